// The exercise form's starter model: the same builder learners use, validated against the
// dataset chosen in the form; on save its spec goes into the form's hidden starter_spec field.

import { mountBuilder } from "./builder.js";

const config = JSON.parse(document.getElementById("builder-config").textContent);
const form = document.getElementById("exercise-form");
const dataset = document.getElementById("id_dataset");
const hidden = document.getElementById("id_starter_spec");

const builder = mountBuilder(document.getElementById("builder"), {
  schema: config.schema,
  spec: config.spec,
  validateUrl: config.validateUrl,
  csrfToken: form.querySelector("input[name=csrfmiddlewaretoken]").value,
  extraBody: () => ({ dataset: dataset.value }),
  headingLevel: 2, // the form sits right under the page's h1
  words: config.words,
});
dataset.addEventListener("change", () => builder.validateNow());
form.addEventListener("submit", () => {
  hidden.value = JSON.stringify(builder.spec());
});
