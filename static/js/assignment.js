// The assignment page: the model builder (or the code editor), submitting, and the chart of
// the learner's attempts. Configuration comes from the page (#builder-config, #history-data).
/* global uPlot */

import { mountBuilder } from "./builder.js";
import { drawCurves } from "./curves.js";

const config = JSON.parse(document.getElementById("builder-config").textContent);
const csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]").value;
const message = document.getElementById("submit-message");
const submitButton = document.getElementById("submit");
const submitWhy = document.getElementById("submit-why");
const words = config.words.messages;
// The page leaves the button disabled when the assignment takes no more attempts.
const submittable = !submitButton.disabled;

let builder = null;
let modelValid = false;
const builderRoot = document.getElementById("builder");
if (builderRoot) {
  builder = mountBuilder(builderRoot, {
    schema: config.schema,
    spec: config.spec,
    validateUrl: config.validateUrl,
    csrfToken,
    words: config.words,
  });
  builder.onReport((report) => {
    modelValid = report.valid;
    updateSubmit();
  });
}

// While the builder's model is unchecked or invalid, Submit is disabled and says why.
function updateSubmit() {
  if (!submittable) return;
  const blocked = currentKind() === "spec" && !modelValid;
  submitButton.disabled = blocked;
  submitWhy.hidden = !blocked;
  submitWhy.textContent = blocked ? (builder.report() ? words.invalid : words.checking) : "";
  if (blocked) submitButton.setAttribute("aria-describedby", "submit-why");
  else submitButton.removeAttribute("aria-describedby");
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
  updateSubmit();
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

// The API's message is for programs ("see error.fields"); a person reads the problems found.
function describe(error) {
  if (!error) return words.refused;
  const details = Object.values(error.fields || {}).flatMap((problems) =>
    Array.isArray(problems) ? problems : [problems],
  );
  return details.length ? `${words.refused} ${details.join(" ")}` : error.message;
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
    message.textContent = words.no_answer;
  }
  submitButton.disabled = false;
  updateSubmit();
});
if (builder) updateSubmit();

const history = document.getElementById("history-data");
if (history) {
  drawCurves(document.getElementById("history-chart"), JSON.parse(history.textContent), {
    x: "Epochs",
    y: "Loss",
    value: "loss",
  });
}
