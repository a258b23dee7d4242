// Swagger UI on /openapi.json. "Try it out" calls this server; with the gallery's cookie session
// a change also needs the CSRF header, added here (a bearer token from "Authorize" wins anyway).
window.addEventListener("DOMContentLoaded", () => {
  const csrfCookie = document.body.dataset.csrfAccessCookie || "csrf_access_token";
  const readCookie = (name) => {
    for (const part of document.cookie.split(";")) {
      const eq = part.indexOf("=");
      if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
    }
    return null;
  };
  window.ui = window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    requestInterceptor: (request) => {
      const token = readCookie(csrfCookie);
      if (token && !request.headers.Authorization) request.headers["X-CSRF-TOKEN"] = token;
      return request;
    },
  });
});
