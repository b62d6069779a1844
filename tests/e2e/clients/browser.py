#!/usr/bin/python3
"""Load a page in Debian's headless chromium and print what a person would see, for the e2e
scenarios (status_page.toml).

  browser.py URL [BUDGET_MS]

Runs `chromium --headless=new --dump-dom` with a throwaway profile in a temporary directory
(removed afterwards) and a virtual-time budget (default 4000 ms) so the page's scripts run and
fetch what they need. Prints the DOM chromium serialised, then a summary from parsing it:

  SCRIPTS n                       <script> elements in the DOM
  FIELD id text                   text of every element with an id starting d- or p- (iwfd's
                                  status page: device and PCP server), and of #note, #m-count
  ROW c1 | c2 | ...               text of each row of the mappings table (tbody#rows)
  CELLS n                         cells of that row
  COUNT n                         rows

Exit 0, or 1 when chromium failed.
"""
import html.parser
import shutil
import subprocess
import sys
import tempfile


class Summary(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts = 0
        self.fields = []          # [id, text]
        self.rows = []            # [[cell text, ...], ...]
        self.stack = []           # (tag, id) of open elements
        self.in_rows = False
        self.cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "tbody" and a.get("id") == "rows":
            self.in_rows = True
        if self.in_rows and tag == "tr":
            self.rows.append([])
        if self.in_rows and tag == "td":
            self.cell = []
        i = a.get("id", "")
        if i.startswith(("d-", "p-")) or i in ("note", "m-count"):
            self.fields.append([i, ""])
        self.stack.append((tag, i))

    def handle_endtag(self, tag):
        if tag == "tbody" and self.in_rows:
            self.in_rows = False
        if tag == "td" and self.cell is not None and self.rows:
            self.rows[-1].append("".join(self.cell))
            self.cell = None
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)
        open_ids = {i for _, i in self.stack}
        for f in self.fields:
            if f[0] in open_ids:
                f[1] += data


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    url, budget = argv[1], int(argv[2]) if len(argv) > 2 else 4000
    profile = tempfile.mkdtemp(prefix="iwf-chromium-")
    try:
        p = subprocess.run(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            "--disable-extensions", "--disable-background-networking", "--disable-sync",
                            "--user-data-dir=" + profile, "--virtual-time-budget=%d" % budget,
                            "--dump-dom", url], capture_output=True, text=True, timeout=90)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if p.returncode != 0 or "<html" not in p.stdout:
        print("chromium exited %d:\n%s" % (p.returncode, p.stderr[-2000:]))
        return 1
    print(p.stdout)
    s = Summary()
    s.feed(p.stdout)
    print("SCRIPTS %d" % s.scripts)
    for i, text in s.fields:
        print("FIELD %s %s" % (i, " ".join(text.split())))
    for r in s.rows:
        print("ROW " + " | ".join(r))
        print("CELLS %d" % len(r))
    print("COUNT %d" % len(s.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
