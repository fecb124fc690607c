"""The web dashboard: server-rendered pages over the same services and policy as the APIs.

Pages are Jinja2 templates (autoescaped); the only script is ``static/app.js``,
served from this package, so the Content-Security-Policy allows no inline
script and the dashboard works on a machine with no internet. Live views listen
to one Server-Sent Events stream (``/ui/events``) that speaks only when
something changed, and then fetch fresh HTML fragments.
"""
