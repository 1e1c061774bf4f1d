"""The built book as a reader sees it: every page opened in headless Chromium.

The HTML is built from the chapters already in ``book/`` (nothing is executed)
into a temporary folder, served from a localhost HTTP server, and each page is
opened in Debian's ``chromium`` driven through the DevTools protocol
(``websocket-client``; no browser download). Per page: no console errors or
uncaught exceptions, no failed request and none that leaves localhost (the
book must read offline: MathJax is served with it), every ``<img>`` decoded,
every ``<audio>`` with a playable source, and the equations typeset by MathJax
(no raw ``\\(``, ``\\[`` or ``$$`` left in the visible text).

Chromium missing: the tests are skipped, or fail when ``$CI`` is set
(``.ci/install-chromium`` installs it).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from sepnb.book import build
from sepnb.core import paths

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-default-browser-check",
    "--mute-audio",
    "--hide-scrollbars",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    "--window-size=1200,2000",
]
#: Seconds a page may take to load, typeset its math and go quiet on the network.
PAGE_TIMEOUT = 30
#: Top-level files and folders of the repository that the book's build reads.
BOOK_SOURCES = ("_config.yml", "_toc.yml", "book", "_static", "_templates")


def _chromium() -> str | None:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


# --------------------------------------------------------------------------- DevTools client


class DevTools:
    """A minimal Chrome DevTools protocol client over one browser websocket (flattened sessions)."""

    def __init__(self, ws_url: str):
        import websocket  # websocket-client

        self._ws = websocket.create_connection(ws_url, timeout=PAGE_TIMEOUT, suppress_origin=True)
        self._next_id = 0
        self.events: list[dict] = []

    def close(self):
        self._ws.close()

    def _recv(self, timeout: float) -> dict | None:
        import websocket

        self._ws.settimeout(max(timeout, 0.01))
        try:
            return json.loads(self._ws.recv())
        except websocket.WebSocketTimeoutException:
            return None

    def send(
        self, method: str, params: dict | None = None, session: str | None = None, timeout: float = PAGE_TIMEOUT
    ) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self._recv(deadline - time.monotonic())
            if reply is None:
                continue
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)
        raise TimeoutError(f"no reply to {method} within {timeout} s")

    def pump(self, seconds: float) -> None:
        """Collect events for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            reply = self._recv(left)
            if reply is not None and "method" in reply:
                self.events.append(reply)


def _start_chromium(exe: str, profile_dir: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port_file = profile_dir / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if port_file.exists():
            lines = port_file.read_text().split()
            if len(lines) >= 2:
                return proc, f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{exe} did not start its DevTools server (exit status {proc.poll()})")


# --------------------------------------------------------------------------- page checks

#: Runs in the page once it is loaded; returns what the tests check.
PAGE_PROBE = r"""
(async () => {
  const hasMath = document.querySelector('.math') !== null;
  let mathjax = 'absent';
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    try { await MathJax.startup.promise; mathjax = 'done'; } catch (e) { mathjax = 'failed: ' + e; }
  }
  const imgs = [...document.images];
  imgs.forEach(i => { if (i.loading === 'lazy') i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  await document.fonts.ready;
  const audios = [...document.querySelectorAll('audio')];
  await Promise.all(audios.map(a => a.readyState >= 1 || a.error ? null : new Promise(ok => {
    a.addEventListener('loadedmetadata', ok, {once: true});
    a.addEventListener('error', ok, {once: true});
    setTimeout(ok, 5000);
    if (a.preload === 'none') a.load();
  })));
  // visible text outside code, scripts and typeset math
  const skip = new Set(['PRE', 'CODE', 'SCRIPT', 'STYLE', 'TEXTAREA', 'NOSCRIPT', 'MJX-CONTAINER', 'MJX-ASSISTIVE-MML']);
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      for (let e = node.parentElement; e; e = e.parentElement) {
        if (skip.has(e.tagName) || e.classList.contains('highlight')) return NodeFilter.FILTER_REJECT;
      }
      return NodeFilter.FILTER_ACCEPT;
    }});
  // delimiters left over, or TeX commands in plain text (a `$...$` that a markdown list split in two)
  const rawTex = /\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{|\$[^$\s][^$]*[\\^_][^$]*\$|\\(mathbf|boldsymbol|sqrt|frac|leftarrow|nabla|sum|prod|log|mid|text|sigma|eta|alpha|mu)\b/;
  for (let n; (n = walker.nextNode()); ) {
    const t = n.nodeValue;
    if (rawTex.test(t) && n.parentElement.getClientRects().length) raw.push(t.trim().slice(0, 120));
  }
  // tables wider than the text column they sit in (they scroll sideways)
  const wide = [...document.querySelectorAll('table.scorecard')].map(t => {
    const col = t.closest('article') || t.closest('main') || document.body;
    return {table: t.className, width: Math.round(t.scrollWidth), column: Math.round(col.clientWidth)};
  }).filter(w => w.width > w.column + 1);
  return {
    url: location.href,
    wideScorecards: wide.map(w => `${w.table}: ${w.width} px in a ${w.column} px column`),
    title: document.title,
    hasMath,
    mathjax,
    mathElements: document.querySelectorAll('.math').length,
    typeset: document.querySelectorAll('mjx-container').length,
    texErrors: [...document.querySelectorAll('mjx-merror')].map(e => e.getAttribute('data-mjx-error') || e.textContent).slice(0, 5),
    untypeset: [...document.querySelectorAll('.math')].filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.trim().slice(0, 80)).slice(0, 5),
    images: imgs.length,
    brokenImages: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => (i.getAttribute('src') || '(no src)').slice(0, 120)),
    audios: audios.length,
    badAudio: audios.map((a, k) => {
      const srcs = [a.getAttribute('src'), ...[...a.querySelectorAll('source')].map(s => s.getAttribute('src'))].filter(Boolean);
      if (!srcs.length) return `audio #${k + 1}: no source`;
      if (a.error) return `audio #${k + 1}: cannot be played (MediaError ${a.error.code}${a.error.message ? ': ' + a.error.message : ''})`;
      if (a.networkState === HTMLMediaElement.NETWORK_NO_SOURCE) return `audio #${k + 1}: no usable source`;
      return null;
    }).filter(Boolean),
    rawTex: raw.slice(0, 5),
  };
})()
"""


def _visit(cdp: DevTools, session: str, url: str, origin: str) -> dict:
    """Open ``url``; return the probe's findings plus the page's console errors and network problems."""
    cdp.events.clear()
    cdp.send("Page.navigate", {"url": url}, session)
    # wait for the load event, following redirects (index.html is a meta refresh)
    deadline = time.monotonic() + PAGE_TIMEOUT
    loaded_at = None
    while time.monotonic() < deadline:
        cdp.pump(0.2)
        kinds = [e["method"] for e in cdp.events]
        if "Page.loadEventFired" in kinds:
            last_load = len(kinds) - 1 - kinds[::-1].index("Page.loadEventFired")
            restarted = "Page.frameStartedLoading" in kinds[last_load:]
            if not restarted:
                loaded_at = loaded_at or time.monotonic()
                if time.monotonic() - loaded_at > 0.5:
                    break
            else:
                loaded_at = None
    probe = cdp.send(
        "Runtime.evaluate", {"expression": PAGE_PROBE, "awaitPromise": True, "returnByValue": True}, session
    )
    if "exceptionDetails" in probe:
        raise RuntimeError(f"{url}: the page probe failed: {probe['exceptionDetails']}")
    found = probe["result"]["value"]
    # then let the network go quiet (fonts, MathJax extensions)
    pending: set[str] = set()
    quiet_since = time.monotonic()
    deadline = time.monotonic() + PAGE_TIMEOUT
    seen = 0
    while time.monotonic() < deadline:
        cdp.pump(0.1)
        for e in cdp.events[seen:]:
            rid = e.get("params", {}).get("requestId")
            if e["method"] == "Network.requestWillBeSent":
                pending.add(rid)
            elif e["method"] in ("Network.loadingFinished", "Network.loadingFailed"):
                pending.discard(rid)
        if len(cdp.events) != seen or pending:
            quiet_since = time.monotonic()
        seen = len(cdp.events)
        if time.monotonic() - quiet_since > 0.5:
            break
    console, network, warnings = [], [], []
    urls = {}
    # the browser's own request for /favicon.ico (the book declares no icon): not the page's
    favicon, ignored = origin + "favicon.ico", set()
    for e in cdp.events:
        m, p = e["method"], e.get("params", {})
        if p.get("requestId") in ignored or p.get("entry", {}).get("url") == favicon:
            continue
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            console.append(f"console.{p['type']}: {args[:300]}")
        elif m == "Runtime.consoleAPICalled" and p.get("type") == "warning":  # reported, not failed on
            warnings.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))[:300])
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            console.append(f"uncaught: {d.get('exception', {}).get('description', d.get('text', ''))[:300]}")
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            console.append(f"{entry.get('source')}: {entry.get('text', '')[:200]} {entry.get('url', '')}".strip())
        elif m == "Network.requestWillBeSent":
            u = p["request"]["url"]
            urls[p["requestId"]] = u
            if u == favicon:
                ignored.add(p["requestId"])
            if not (u.startswith(origin) or u.startswith(("data:", "blob:", "about:"))):
                network.append(f"fetched from outside the site: {u[:200]}")
        elif m == "Network.loadingFailed" and not p.get("canceled"):
            network.append(f"failed ({p.get('errorText')}): {urls.get(p['requestId'], '?')[:200]}")
        elif m == "Network.responseReceived" and p["response"]["status"] >= 400:
            network.append(f"HTTP {p['response']['status']}: {p['response']['url'][:200]}")
    found["console"] = console
    found["warnings"] = warnings
    found["network"] = sorted(set(network))
    return found


# --------------------------------------------------------------------------- fixtures


#: where the module's build put the HTML (set by the ``site`` fixture)
BUILT: dict = {}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the book into a temporary folder; open every page; return ``{page: findings}``."""
    exe = _chromium()
    if exe is None:
        msg = (
            "Chromium is not installed (looked for /usr/bin/chromium, chromium, chromium-browser): "
            "run .ci/install-chromium (as root) or `apt-get install chromium`"
        )
        if os.environ.get("CI"):
            pytest.fail(msg + "; it is required under CI")
        pytest.skip(msg)
    t0 = time.perf_counter()
    # a copy of the book's sources, so that the build (and the MathJax copy) leaves nothing in the repo
    src = tmp_path_factory.mktemp("book-src")
    ignore = shutil.ignore_patterns("*.failed.ipynb", "*.running.ipynb", "*.tmp", ".ipynb_checkpoints")
    for name in BOOK_SOURCES:
        p = paths.ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=ignore)
        elif p.is_file():
            shutil.copy2(p, src / name)
    build.copy_static_assets(src)
    out = tmp_path_factory.mktemp("book-html")
    jb = Path(sys.executable).with_name("jupyter-book")
    run = subprocess.run(
        [str(jb), "build", str(src), "--path-output", str(out), "--warningiserror", "--keep-going"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, f"jupyter-book build failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    html = out / "_build" / "html"
    BUILT["html"] = html
    pages = sorted(
        p.relative_to(html).as_posix()
        for p in html.rglob("*.html")
        if p.relative_to(html).parts[0] not in ("_static", "_sources", "_images")
    )
    assert pages, f"no HTML pages in {html}"

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_address[1]}/"
    profile_dir = Path(tempfile.mkdtemp(prefix="sepnb-chromium-"))
    proc = cdp = None
    try:
        proc, ws_url = _start_chromium(exe, profile_dir)
        cdp = DevTools(ws_url)
        target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            cdp.send(f"{domain}.enable", {}, session)
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True}, session)
        results = {page: _visit(cdp, session, origin + page, origin) for page in pages}
    finally:
        if cdp is not None:
            cdp.close()
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        server.shutdown()
        server.server_close()
        shutil.rmtree(profile_dir, ignore_errors=True)
    print(f"\nbuilt and opened {len(pages)} pages in {time.perf_counter() - t0:.1f} s")
    return results


def _report(site: dict, key: str) -> str:
    return "\n".join(f"{page}:\n  " + "\n  ".join(site[page][key]) for page in site if site[page][key])


# --------------------------------------------------------------------------- tests


def test_every_chapter_has_a_page(site):
    chapters = [f"book/{stem}.html" for stem in build.chapters()]
    missing = [c for c in chapters if c not in site]
    assert not missing, f"pages missing from the built site: {missing}"


def test_api_reference_documents_every_public_name(site):
    """book/api.md renders the docstrings of every name sepnb exports (autodoc), with signatures."""
    import sepnb

    text = (BUILT["html"] / "book" / "api.html").read_text()
    for name in sepnb.__all__:
        obj = getattr(sepnb, name)
        if name == "__version__" or isinstance(obj, type(sepnb)):
            continue
        assert f'id="sepnb.{name}"' in text, f"the API reference does not document sepnb.{name}"
    assert "sepnb.RunNotFound" in text and "never trains" in text.replace("\n", " ")
    for layer in ("core", "data", "priors", "runs", "separation", "analysis", "book"):
        assert f'id="module-sepnb.{layer}"' in text, f"the API reference has no section for sepnb.{layer}"


def test_no_console_errors(site):
    assert not any(r["console"] for r in site.values()), "console errors:\n" + _report(site, "console")


def test_everything_is_served_by_the_site_and_loads(site):
    assert not any(r["network"] for r in site.values()), "network problems:\n" + _report(site, "network")


def test_every_image_is_decoded(site):
    assert not any(r["brokenImages"] for r in site.values()), "images not decoded:\n" + _report(site, "brokenImages")


def test_every_audio_has_a_source(site):
    assert not any(r["badAudio"] for r in site.values()), "audio without a playable source:\n" + _report(
        site, "badAudio"
    )


def test_equations_are_rendered(site):
    problems = {}
    for page, r in site.items():
        p = []
        if r["hasMath"]:
            if r["mathjax"] != "done":
                p.append(f"MathJax did not run (MathJax: {r['mathjax']})")
            if r["untypeset"]:
                p.append(f"{len(r['untypeset'])}+ of {r['mathElements']} equations not typeset, e.g. {r['untypeset']}")
        if r["texErrors"]:
            p.append(f"TeX errors: {r['texErrors']}")
        if r["rawTex"]:
            p.append(f"raw LaTeX in the visible text: {r['rawTex']}")
        if p:
            problems[page] = p
    assert not problems, "math not rendered:\n" + "\n".join(f"{k}:\n  " + "\n  ".join(v) for k, v in problems.items())
    assert any(r["typeset"] for r in site.values()), "no equation was typeset anywhere in the book"


def test_the_scorecard_fits_its_column(site):
    """The opening page's scorecard (the claims and their verdicts) is read without scrolling sideways."""
    assert any("book/00_intro.html" == page for page in site), "the opening page is missing"
    assert not any(r["wideScorecards"] for r in site.values()), "scorecard wider than the text column:\n" + _report(
        site, "wideScorecards"
    )
