// The preferences page: until a time zone is chosen, propose the browser's own.

const select = document.getElementById("id_time_zone");
const note = document.getElementById("browser-zone");
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
if (select && select.value === "" && zone && [...select.options].some((o) => o.value === zone)) {
  select.value = zone;
  note.textContent = note.dataset.template.replace("{zone}", zone);
  note.hidden = false;
}
