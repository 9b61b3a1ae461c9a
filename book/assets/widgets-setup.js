// Runs between RequireJS and the ipywidgets embed manager (embed-amd.js), which needs two things from the page.
(function () {
  // 1. Its modules are named "@jupyter-widgets/..." and it loads its icon fonts from the folder RequireJS would
  // load those modules from. Point that folder at the vendored copy, relative to the page (Sphinx writes the way
  // up to the book's root in <html data-content_root>), so no CDN is asked and any page depth works.
  var root = document.documentElement.dataset.content_root || "";
  var vendor = root + "_static/vendor/html-manager";
  require.config({ paths: { "@jupyter-widgets/html-manager/dist": vendor, "@jupyter-widgets": vendor } });

  // 2. It typesets the math in widget labels with MathJax 2's MathJax.Hub.Queue; the book loads MathJax 3.
  // MathJax is loaded with "defer", so it exists at DOMContentLoaded, before the widgets render on "load".
  window.addEventListener("DOMContentLoaded", function () {
    var mathjax = window.MathJax;
    if (!mathjax || mathjax.Hub || !mathjax.startup) return;
    mathjax.Hub = {
      Queue: function () {
        Array.prototype.forEach.call(arguments, function (job) {
          if (Array.isArray(job) && job[0] === "Typeset" && job[2]) {
            mathjax.startup.promise.then(function () { return mathjax.typesetPromise([job[2]]); });
          }
        });
      },
    };
  });
})();
