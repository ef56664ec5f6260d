// The assignment page: the model builder (or the code editor), submitting, and the chart of
// the learner's attempts. Configuration comes from the page (#builder-config, #history-data).
/* global uPlot */

import { mountBuilder } from "./builder.js";
import { drawCurves } from "./curves.js";

const config = JSON.parse(document.getElementById("builder-config").textContent);
const csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]").value;
const message = document.getElementById("submit-message");
const submitButton = document.getElementById("submit");

let builder = null;
const builderRoot = document.getElementById("builder");
if (builderRoot) {
  builder = mountBuilder(builderRoot, {
    schema: config.schema,
    spec: config.spec,
    validateUrl: config.validateUrl,
    csrfToken,
  });
}

// Tabs: arrow keys move between them, as the ARIA tabs pattern has it.
const tabs = [...document.querySelectorAll("[role=tab]")];
function select(tab) {
  for (const other of tabs) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
  }
  tab.focus();
}
for (const [index, tab] of tabs.entries()) {
  tab.addEventListener("click", () => select(tab));
  tab.addEventListener("keydown", (event) => {
    if (event.key === "ArrowRight") select(tabs[(index + 1) % tabs.length]);
    if (event.key === "ArrowLeft") select(tabs[(index - 1 + tabs.length) % tabs.length]);
  });
}

function currentKind() {
  const selected = tabs.find((tab) => tab.getAttribute("aria-selected") === "true");
  if (selected) return selected.id === "tab-code" ? "code" : "spec";
  return config.kinds[0];
}

function describe(error) {
  if (!error) return "The submission was refused.";
  const details = Object.entries(error.fields || {}).flatMap(([field, problems]) =>
    (Array.isArray(problems) ? problems : [problems]).map((p) => `${field}: ${p}`),
  );
  return details.length ? `${error.message} ${details.join(" ")}` : error.message;
}

submitButton.addEventListener("click", async () => {
  const kind = currentKind();
  const body = kind === "code" ? { kind, code: document.getElementById("code-editor").value } : { kind, spec: builder.spec() };
  submitButton.disabled = true;
  message.textContent = "";
  try {
    const response = await fetch(config.submitUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    const answer = await response.json();
    if (response.status === 201) {
      window.location.assign(`${config.runBase}${answer.id}/`);
      return;
    }
    message.textContent = describe(answer.error);
  } catch {
    message.textContent = "The server did not answer; nothing was submitted. Try again.";
  }
  submitButton.disabled = false;
});

const history = document.getElementById("history-data");
if (history) {
  drawCurves(document.getElementById("history-chart"), JSON.parse(history.textContent), {
    x: "Epochs",
    y: "Loss",
    value: "loss",
  });
}
