"""compat.html's filter by state, release and area: a small inline script, no server, the view a link.

The filter lives in the URL fragment (``compat.html#state=failed&release=24.10&area=config``; a key may
list values, ``state=failed,error``), so a filtered view is a link to send, and opening the file from disk
with that fragment shows it. A fragment without ``=`` is an anchor (``#failures``) and keeps the filter.
It filters the grid (rows with a result of the state in the shown columns; the columns of the release,
and their ``col`` in the header's and each file's table; the rows of the area; a file's table with no row
left is hidden whole), the failures and the history; the rest of the page stays.

Without JavaScript the form stays hidden and everything is shown: the page reads the same. The script
reads what the page already says (a grid cell's state is its class, a column's release its header's
``data-release``, an area its file row's ``data-area``; a failure or history row carries ``data-state``,
``data-release`` and ``data-area``), so the filter adds no bytes per grid cell.
"""

from __future__ import annotations

import html
from collections.abc import Iterable


FILTER_KEYS = ("state", "release", "area")  # the fragment's keys, in the form's order
GRID_HEAD = "grid-head"  # the class of the grid's header table (a column's release on its th.cell)
GRID_FILE = "grid-file"  # the class of a test file's block in the grid: its table, the file's row first
# Fixed at the top right: at hand wherever the reader has scrolled to, and it moves nothing of the page.
STYLE = ("#filter{position:fixed;top:.4em;right:.6em;z-index:5;max-width:46em;font-size:.85em;padding:.3em .5em;"
         "border:1px solid #d0d7de;border-radius:6px;background:#f6f8fae8}"
         "#filter label{margin-right:.6em}#filter output{display:block;color:#57606a}")

SCRIPT = """(() => {
const KEYS = %(keys)s, form = document.getElementById('filter'), count = document.getElementById('filter-count');
const head = document.querySelector('table.%(head)s'), heads = head ? [...head.querySelectorAll('th.cell')] : [];
const releases = head ? [...head.querySelectorAll('th.rel')] : [];
const files = [...document.querySelectorAll('.%(file)s')];
let current = {};
const read = () => {
  const text = decodeURIComponent(location.hash.slice(1));
  if (!text.includes('=')) return null;
  const found = {}, query = new URLSearchParams(text);
  for (const key of KEYS) { const v = query.get(key); if (v) found[key] = v.split(','); }
  return found;
};
const match = (want, values) => !want || values.some(v => want.includes(v));
const listed = el => {
  const d = el.dataset;
  return match(current.state, (d.state || '').split(' ')) && match(current.area, [d.area || ''])
    && match(current.release, (d.release || '').split(' '));
};
const apply = () => {
  for (const key of KEYS) form.elements[key].value = current[key] && current[key].length === 1 ? current[key][0] : '';
  const shown = heads.map(th => match(current.release, [th.dataset.release]));
  heads.forEach((th, i) => { th.hidden = !shown[i]; });
  const kept = releases.map(th => match(current.release, [th.dataset.release]));
  releases.forEach((th, i) => { th.hidden = !kept[i]; });
  const columns = shown.filter(Boolean).length;
  document.querySelectorAll('.grid colgroup').forEach(group => {  // a release's col: in the header's order
    group.querySelectorAll('col.s').forEach((col, i) => { col.hidden = !kept[i]; });
  });
  let rows = 0, of = 0;
  for (const file of files) {
    const [header, ...cases] = file.querySelector('table').rows;
    const area = header.dataset.area || '';
    header.cells[0].colSpan = columns + 1;
    let inFile = 0;
    for (const tr of cases) {
      of++;
      let hit = !current.state;
      for (let i = 0; i < shown.length; i++) {
        const td = tr.cells[i + 1];
        td.hidden = !shown[i];
        if (!hit && shown[i] && current.state.some(s => td.classList.contains(s))) hit = true;
      }
      tr.hidden = !(hit && match(current.area, [area]));
      if (!tr.hidden) { rows++; inFile++; }
    }
    file.hidden = !inFile;
    file.style.setProperty('--rows', inFile + 1);  // its placeholder's height while off screen
  }
  let items = 0, all = 0;
  document.querySelectorAll('[data-state]').forEach(el => { all++; el.hidden = !listed(el); if (!el.hidden) items++; });
  const on = KEYS.filter(k => current[k]).map(k => `${k} ${current[k].join(', ')}`);
  count.textContent = on.length ? `${on.join('; ')}: ${rows} of ${of} grid rows, ${items} of ${all} listed results`
                                : `everything: ${of} grid rows, ${all} listed results`;
};
const follow = () => { const found = read(); if (found) { current = found; apply(); } };
form.addEventListener('change', () => {
  const parts = KEYS.filter(k => form.elements[k].value).map(k => `${k}=${encodeURIComponent(form.elements[k].value)}`);
  location.hash = parts.join('&') || 'state=';
});
form.addEventListener('reset', () => setTimeout(() => { location.hash = 'state='; }));
addEventListener('hashchange', follow);
form.hidden = false;
if (read()) follow();
else count.textContent = 'everything shown';  // nothing to hide: the rows are not touched on opening
})();""" % {"keys": "['" + "', '".join(FILTER_KEYS) + "']", "head": GRID_HEAD, "file": GRID_FILE}


def e(text: object) -> str:
    return html.escape(str(text), quote=True)


def data(states: Iterable[str], releases: Iterable[str], area: str) -> str:
    """The attributes the filter reads on a failure or a history row."""
    return (f' data-state="{e(" ".join(sorted(set(states))))}" data-release="{e(" ".join(sorted(set(releases))))}"'
            f' data-area="{e(area)}"')


def form(states: Iterable[str], releases: Iterable[str], areas: Iterable[str]) -> str:
    """The filter's form: hidden until the script shows it (without JavaScript the page shows everything)."""
    def select(name: str, values: Iterable[str]) -> str:
        options = "".join(f'<option value="{e(v)}">{e(v)}</option>' for v in values)
        return f'<label>{name} <select name="{name}"><option value="">any</option>{options}</select></label>'

    fields = dict(zip(FILTER_KEYS, (states, releases, areas)))
    return ('<form id="filter" hidden><strong>Filter</strong> '
            + "".join(select(name, values) for name, values in fields.items())
            + '<button type="reset">show all</button> <output id="filter-count"></output></form>')


def script() -> str:
    return f"<script>{SCRIPT}</script>"
