// Starts Swagger UI on /swagger (served as a file so the page needs no inline script).
// The validator badge is off: it would load an image from validator.swagger.io.
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "/swagger/json",
    dom_id: "#swagger-ui",
    validatorUrl: "none",
    deepLinking: true,
    displayRequestDuration: true,
    persistAuthorization: false,
  });
});
