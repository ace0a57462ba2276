// Starts Swagger UI for the master's /docs page. A file, not an inline <script>, so the
// page's Content-Security-Policy can allow scripts from the master only.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    deepLinking: true,
    displayOperationId: true,
    showExtensions: true,
    showCommonExtensions: true,
    // no calls to validator.swagger.io: the network may be air-gapped
    validatorUrl: null,
  });
})();
