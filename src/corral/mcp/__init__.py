"""Corral's MCP face: TaskDriver's tools and Corral's command tools for LLM agents.

One tool set, served in-process by ``corral server`` at ``/mcp`` (streamable
HTTP, ``http.py``); ``corral mcp`` (``stdio.py``) is a stdio proxy of that
endpoint, so both transports behave as one. Tools call the same services, under
the same policy, as every HTTP face; see docs/mcp.md.
"""
