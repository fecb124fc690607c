// /api/docs: start Swagger UI (served from the package, see api/apidocs.py) on the
// server's own OpenAPI document. A file, not an inline script: the page's CSP has no
// 'unsafe-inline'. The token given to "Authorize" is kept for this tab only.
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    tryItOutEnabled: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
