// nines's own script: progressive enhancement only (every page works without it).
// The name filter of a list filters its rows as one types.
document.addEventListener("DOMContentLoaded", () => {
  for (const input of document.querySelectorAll("input[data-filter]")) {
    const table = document.getElementById(input.dataset.filter);
    if (!table) continue;
    input.addEventListener("input", () => {
      const needle = input.value.trim().toLowerCase();
      for (const row of table.querySelectorAll("tbody tr[data-name]")) {
        row.hidden = needle !== "" && !row.dataset.name.toLowerCase().includes(needle);
      }
    });
  }
});
