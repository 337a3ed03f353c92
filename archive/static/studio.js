// The studio's episode editor: a live preview of the notes (rendered and sanitised by the site: POST
// /studio/preview with the form's CSRF token), takeaway rows moved and added in place, and a file too large
// for the site refused before it is sent. Everything here is an enhancement: without JavaScript the Preview
// button posts the form and the page comes back with the preview, ↑ ↓ and "Add more" post it too.
(function () {
  "use strict";

  var form = document.getElementById("episode-form");
  if (!form) return;
  var token = form.querySelector("input[name=csrf_token]").value;

  // -- live preview -------------------------------------------------------------------------------------------
  var notes = document.getElementById("f-notes");
  var preview = document.getElementById("notes-preview");
  var previewUrl = form.getAttribute("data-preview-url");
  var timer = null;
  var sent = 0;

  function showEmpty() {
    preview.textContent = "";
    var p = document.createElement("p");
    p.className = "empty";
    p.textContent = preview.getAttribute("data-empty");
    preview.appendChild(p);
  }

  function renderPreview() {
    var text = notes.value;
    var mine = ++sent;
    if (!text.trim()) { showEmpty(); return; }
    var body = new FormData();
    body.append("notes_markdown", text);
    fetch(previewUrl, {method: "POST", body: body, credentials: "same-origin", headers: {"X-CSRFToken": token}})
      .then(function (response) {
        return response.json().then(function (data) { return {ok: response.ok, data: data}; });
      })
      .then(function (result) {
        if (mine !== sent) return;  // an older answer: a newer one is on its way
        if (result.ok) {
          preview.innerHTML = result.data.html || "";  // sanitised by the site (archive/sanitize.py)
          if (!result.data.html) showEmpty();
          preview.removeAttribute("aria-busy");
        } else {
          preview.textContent = result.data.error || "The preview is not available.";
        }
      })
      .catch(function () { /* offline: the Preview button still works */ });
  }

  if (notes && preview && previewUrl) {
    notes.addEventListener("input", function () {
      clearTimeout(timer);
      preview.setAttribute("aria-busy", "true");
      timer = setTimeout(renderPreview, 250);
    });
  }

  // -- takeaway and chapter rows --------------------------------------------------------------------------------
  function rowsOf(list) {
    return Array.prototype.slice.call(list.children).filter(function (el) { return el.hasAttribute("data-row"); });
  }

  function renumber(list) {
    rowsOf(list).forEach(function (row, index) {
      var position = row.querySelector(".row__position");
      if (position) position.value = index + 1;
    });
  }

  form.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-move]");
    if (button) {
      event.preventDefault();
      var row = button.closest("[data-row]");
      var list = row.parentNode;
      if (button.getAttribute("data-move") === "up" && row.previousElementSibling) {
        list.insertBefore(row, row.previousElementSibling);
      } else if (button.getAttribute("data-move") === "down" && row.nextElementSibling) {
        list.insertBefore(row.nextElementSibling, row);
      }
      renumber(list);
      button.focus();
      return;
    }
    var add = event.target.closest("button[data-add-row]");
    if (add) {
      event.preventDefault();
      addRow(form.querySelector("[data-rows=" + add.getAttribute("data-add-row") + "]"));
    }
  });

  // A copy of the list's last row, emptied, under a number no row has.
  function addRow(list) {
    var rows = rowsOf(list);
    if (!rows.length) return;
    var name = list.getAttribute("data-rows");
    var next = 1 + Math.max.apply(null, rows.map(function (row) { return parseInt(row.getAttribute("data-row"), 10); }));
    var old = rows[rows.length - 1].getAttribute("data-row");
    var row = rows[rows.length - 1].cloneNode(true);
    var prefix = name + "-" + old + "-";
    row.setAttribute("data-row", next);
    row.className = "row row--blank";
    Array.prototype.forEach.call(row.querySelectorAll("[name], [id], [for], [aria-describedby]"), function (el) {
      ["name", "id", "for"].forEach(function (attr) {
        var value = el.getAttribute(attr);
        if (value && value.indexOf(prefix) === 0) el.setAttribute(attr, name + "-" + next + "-" + value.slice(prefix.length));
      });
      el.removeAttribute("aria-invalid");
      el.removeAttribute("aria-describedby");
      if (el.type === "checkbox") el.checked = false;
      else if (el.tagName === "TEXTAREA" || (el.tagName === "INPUT" && el.type !== "submit")) el.value = "";
    });
    Array.prototype.forEach.call(row.querySelectorAll(".field-error"), function (el) { el.remove(); });
    list.appendChild(row);
    renumber(list);
    var first = row.querySelector("input[type=text]");
    if (first) first.focus();
  }

  // -- audio upload ---------------------------------------------------------------------------------------------
  var file = document.getElementById("f-audio-file");
  if (file) {
    file.addEventListener("change", function () {
      var max = parseInt(file.getAttribute("data-max-bytes"), 10);
      var chosen = file.files && file.files[0];
      file.setCustomValidity(chosen && max && chosen.size > max ? "This file is larger than the site accepts." : "");
      file.reportValidity();
    });
  }
})();
