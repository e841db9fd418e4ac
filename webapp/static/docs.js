// Starts Swagger UI on /docs; a file rather than an inline script, so the page needs no 'unsafe-inline'.
"use strict";

const root = document.getElementById("swagger-ui");
// validatorUrl null: no badge fetched from validator.swagger.io.
SwaggerUIBundle({ url: root.dataset.specUrl, domNode: root, deepLinking: true, validatorUrl: null });
