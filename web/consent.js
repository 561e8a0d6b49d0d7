// web/consent.js — progressive enhancement of the consent page. Without it the page works:
// bundle links reload the page with the bundle preselected, the workspace form has a button.
(function () {
  'use strict';
  var select = document.getElementById('ws-select');
  if (select) {
    var sw = document.getElementById('ws-switch');
    if (sw) sw.classList.add('hidden');
    select.addEventListener('change', function () { select.form.submit(); });
  }
  var form = document.getElementById('consent-form');
  if (!form) return;
  var links = document.querySelectorAll('a.bundle');
  for (var i = 0; i < links.length; i++) {
    links[i].addEventListener('click', function (ev) {
      ev.preventDefault();
      var wanted = (this.getAttribute('data-scopes') || '').split(' ');
      var boxes = form.querySelectorAll('input[type=checkbox][name=scope]');
      for (var j = 0; j < boxes.length; j++) {
        if (!boxes[j].disabled) boxes[j].checked = wanted.indexOf(boxes[j].value) >= 0;
      }
      for (var k = 0; k < links.length; k++) links[k].classList.remove('active');
      this.classList.add('active');
    });
  }
})();
