/* Envelope page: the print button (the page itself is print-ready without it: Ctrl+P). */
(function () {
  'use strict';
  var button = document.querySelector('[data-print]');
  if (button) button.addEventListener('click', function () { window.print(); });
})();
