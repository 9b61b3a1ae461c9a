// The ipywidgets embed manager (embed-amd.js) defines its modules under "@jupyter-widgets/..." and loads its
// icon fonts from the folder RequireJS would load those modules from. Point that folder at the vendored copy,
// relative to the page (Sphinx writes the way up to the book's root in <html data-content_root>), so the book
// needs no CDN and works from any depth, over http or file://.
(function () {
  var root = document.documentElement.dataset.content_root || "";
  var vendor = root + "_static/vendor/html-manager";
  require.config({ paths: { "@jupyter-widgets/html-manager/dist": vendor, "@jupyter-widgets": vendor } });
})();
