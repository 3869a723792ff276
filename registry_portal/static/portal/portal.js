/* Progressive enhancement for the portal's pages. Every page works without this script:
   forms post normally and the server validates everything. With it:
   - copy buttons for pull commands;
   - switches submit themselves;
   - the promotion policy form adds and removes rule rows, offers only the operators that fit
     the chosen field, fits the value input to it, filters target repositories by
     organization, previews the tag template live and runs the dry run in place. */
(function () {
  "use strict";

  function onReady(callback) {
    if (document.readyState !== "loading") callback();
    else document.addEventListener("DOMContentLoaded", callback);
  }

  function debounce(callback, wait) {
    let timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(callback, wait);
    };
  }

  function setupCopyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        const text = document.getElementById(button.dataset.copy).textContent.trim();
        navigator.clipboard.writeText(text).then(function () {
          const label = button.textContent;
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = label; }, 1500);
        });
      });
    });
  }

  function setupAutoSubmit() {
    document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
      form.querySelectorAll("[data-autosubmit-fallback]").forEach(function (el) { el.hidden = true; });
      form.addEventListener("change", function () { form.requestSubmit(); });
    });
  }

  // --- the promotion policy form -------------------------------------------------------------

  function fitOperators(row) {
    const fieldSelect = row.querySelector("select[name$='-field']");
    const operatorSelect = row.querySelector("select[name$='-operator']");
    const valuesInput = row.querySelector("input[name$='-values']");
    const help = row.querySelector("[data-values-help]");
    const field = fieldSelect.value;
    const kind = fieldSelect.selectedOptions[0].dataset.kind;
    let firstFitting = null;
    Array.from(operatorSelect.options).forEach(function (option) {
      const fits = (option.dataset.fields || "").split(" ").indexOf(field) !== -1;
      option.hidden = !fits;
      option.disabled = !fits;
      if (!option.dataset.label) option.dataset.label = option.textContent;
      option.textContent = kind === "count" && option.dataset.countLabel ? option.dataset.countLabel : option.dataset.label;
      if (fits && firstFitting === null) firstFitting = option;
    });
    if (operatorSelect.selectedOptions[0] && operatorSelect.selectedOptions[0].disabled && firstFitting) {
      operatorSelect.value = firstFitting.value;
    }
    const operator = operatorSelect.value;
    const several = operator === "oo" || operator === "noo";
    if (kind === "count") {
      valuesInput.type = "number";
      valuesInput.min = "0";
      valuesInput.step = "1";
      valuesInput.inputMode = "numeric";
      valuesInput.placeholder = "0";
      help.textContent = "A number of findings (CVSS v3 bands).";
    } else {
      valuesInput.type = "text";
      valuesInput.removeAttribute("min");
      valuesInput.removeAttribute("step");
      valuesInput.inputMode = "text";
      if (kind === "time") {
        valuesInput.placeholder = "2025-01-31 or 7d";
        help.textContent = "A date (YYYY-MM-DD) or a duration before now: 30m, 12h, 7d, 2w.";
      } else if (several) {
        valuesInput.placeholder = field === "license" ? "MIT, Apache-2.0" : "1.0, 1.1";
        help.textContent = "Several values: separate them with commas.";
      } else if (operator === "matches") {
        valuesInput.placeholder = "^v[0-9]+\\.[0-9]+$";
        help.textContent = "A regular expression, searched anywhere in the name; anchor with ^ and $.";
      } else {
        valuesInput.placeholder = "stable";
        help.textContent = "";
      }
    }
  }

  function setupRuleRow(row, onChange) {
    fitOperators(row);
    // The script's Remove button replaces the formset's "remove" checkbox.
    row.querySelectorAll("input[name$='-DELETE']").forEach(function (box) {
      box.closest(".field").hidden = true;
    });
    row.addEventListener("change", function (event) {
      if (event.target.matches("select")) fitOperators(row);
      onChange();
    });
    row.addEventListener("input", onChange);
    const remove = row.querySelector("[data-remove-rule]");
    remove.hidden = false;
    remove.addEventListener("click", function () {
      const del = row.querySelector("input[name$='-DELETE']");
      if (del) del.checked = true;
      row.hidden = true;
      const visible = document.querySelectorAll(".rule-row:not([hidden])");
      const focusTarget = visible.length ? visible[visible.length - 1].querySelector("select") : document.querySelector("[data-add-rule]");
      focusTarget.focus();
      onChange();
    });
  }

  function setupPolicyForm(form) {
    const rules = form.querySelector("[data-rules]");
    const template = document.getElementById("rule-template");
    const total = form.querySelector("input[name='rules-TOTAL_FORMS']");
    const previewUrl = form.dataset.previewUrl;
    const dryRunUrl = form.dataset.dryRunUrl;
    const dryRunPanel = document.getElementById("dry-run-result");

    const refreshDryRun = debounce(runDryRun, 600);

    rules.querySelectorAll(".rule-row").forEach(function (row) { setupRuleRow(row, refreshDryRun); });
    const addButton = form.querySelector("[data-add-rule]");
    addButton.hidden = false;
    addButton.addEventListener("click", function () {
      const index = parseInt(total.value, 10);
      const html = template.innerHTML.replace(/__prefix__/g, String(index)).replace(/__number__/g, String(index + 1));
      rules.insertAdjacentHTML("beforeend", html);
      total.value = String(index + 1);
      const row = rules.lastElementChild;
      setupRuleRow(row, refreshDryRun);
      row.querySelector("select").focus();
      refreshDryRun();
    });

    // target organization, then repository
    const orgSelect = form.querySelector("select[name='target_organization']");
    const repoSelect = form.querySelector("select[name='target']");
    function filterTargets() {
      const org = orgSelect.value;
      Array.from(repoSelect.options).forEach(function (option) {
        if (!option.value) return;
        const fits = option.dataset.org === org;
        option.hidden = !fits;
        option.disabled = !fits;
      });
      if (repoSelect.selectedOptions[0] && repoSelect.selectedOptions[0].disabled) repoSelect.value = "";
      repoSelect.disabled = !org;
    }
    orgSelect.addEventListener("change", filterTargets);
    filterTargets();
    form.addEventListener("submit", function () { repoSelect.disabled = false; });

    // keep the tag, or a template with a live preview
    const templateInput = form.querySelector("input[name='tag_template']");
    const templateField = templateInput.closest(".field");
    const preview = document.getElementById("template-preview");
    function mode() {
      const checked = form.querySelector("input[name='tag_mode']:checked");
      return checked ? checked.value : "keep";
    }
    function showMode() {
      templateField.hidden = mode() !== "template";
      document.getElementById("placeholders").hidden = templateField.hidden;
      updatePreview();
    }
    function updatePreview() {
      const tag = preview.dataset.tag;
      const text = mode() === "template" ? templateInput.value : "";
      const url = previewUrl + "?" + new URLSearchParams({ template: text, tag: tag });
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (data) {
          preview.querySelector("output").textContent = data.preview;
          const list = preview.querySelector("[data-preview-problems]");
          list.innerHTML = "";
          data.errors.forEach(function (message) {
            const li = document.createElement("li");
            li.className = "bad";
            li.textContent = message;
            list.appendChild(li);
          });
          data.warnings.forEach(function (message) {
            const li = document.createElement("li");
            li.className = "warn";
            li.textContent = "Warning: " + message;
            list.appendChild(li);
          });
          preview.querySelector("[data-preview-when]").textContent = data.now;
          preview.dataset.valid = data.errors.length ? "false" : "true";
        });
      refreshDryRun();
    }
    form.querySelectorAll("input[name='tag_mode']").forEach(function (radio) { radio.addEventListener("change", showMode); });
    templateInput.addEventListener("input", debounce(updatePreview, 250));
    preview.hidden = false;
    showMode();

    function runDryRun() {
      const data = new FormData(form);
      fetch(dryRunUrl, { method: "POST", body: data, credentials: "same-origin" })
        .then(function (response) { return response.text(); })
        .then(function (html) { dryRunPanel.innerHTML = html; });
    }
    const dryRunButton = document.getElementById("dry-run-button");
    dryRunButton.hidden = false;
    dryRunButton.addEventListener("click", runDryRun);
    runDryRun();
  }

  onReady(function () {
    setupCopyButtons();
    setupAutoSubmit();
    const policyForm = document.getElementById("policy-form");
    if (policyForm) setupPolicyForm(policyForm);
  });
})();
