// Sort a table by a column: cells carry data-sort (numbers as their full value); empty cells last.
function sortKey(row, column) {
  const cell = row.cells[column];
  const raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
  const number = Number(raw);
  return raw === "" ? null : (Number.isFinite(number) ? number : raw.toLowerCase());
}
function sortTable(table, column, header) {
  const ascending = header.getAttribute("aria-sort") !== "ascending";
  table.querySelectorAll("thead th").forEach(th => th.removeAttribute("aria-sort"));
  header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((x, y) => {
    const a = sortKey(x, column), b = sortKey(y, column);
    if (a === null || b === null) return (a === null) - (b === null);
    const order = (typeof a === "number" && typeof b === "number") ? a - b : String(a).localeCompare(String(b));
    return ascending ? order : -order;
  });
  rows.forEach(row => body.appendChild(row));
}
// Show only the rows of one slice (empty value: every slice).
function filterSlice(select) {
  const table = document.getElementById(select.dataset.table);
  Array.from(table.tBodies[0].rows).forEach(row => {
    row.hidden = select.value !== "" && row.dataset.slice !== select.value;
  });
}
// A link to a query's drill-down opens it.
function openTarget() {
  const id = decodeURIComponent(location.hash.slice(1));
  const target = id ? document.getElementById(id) : null;
  if (target && target.tagName === "DETAILS") {
    target.open = true;
    target.scrollIntoView();
  }
}
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.sortable").forEach(table => {
    table.querySelectorAll("thead th").forEach((header, column) =>
      header.addEventListener("click", () => sortTable(table, column, header)));
  });
  document.querySelectorAll("select.slice-filter").forEach(select => {
    select.addEventListener("change", () => filterSlice(select));
    filterSlice(select);
  });
  openTarget();
});
window.addEventListener("hashchange", openTarget);
