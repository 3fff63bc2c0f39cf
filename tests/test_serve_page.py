"""fsmt-serve's page in a real headless browser (Debian's ``chromium``, driven over the DevTools
protocol with ``websockets``): type a sentence, click Translate, read the translation and its
score from the page; with the n-best toggle on, every beam is listed. Loopback only, bounded waits.

``scripts/install_browser.sh`` (run by ``scripts/test.sh``/``.ci/run``) installs chromium; the test
skips only if chromium is still missing, and says so.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch
from websockets.sync.client import connect

from fsmt_port.translation.translator import Translator
from serving import ServerProcess

SENTENCE = "Two dogs are playing in the snow."
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


class DevTools:
    """The few DevTools protocol calls the test needs, over one page's websocket."""

    def __init__(self, socket) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    def call(self, method: str, timeout: float = 30, **params):
        call_id = next(self.ids)
        self.socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {expression}")

    def click(self, selector: str) -> None:
        """A real mouse click at the element's centre."""
        box = self.evaluate(f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if BROWSER is None:
        pytest.skip("chromium is not installed and scripts/install_browser.sh could not install it "
                    "(it needs apt-get and root): the page test did not run")
    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen([BROWSER, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--disable-extensions", "--disable-background-networking",
                             f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1",
                             "--remote-debugging-port=0", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and len(port_file.read_text().split()) >= 2) and time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {proc.returncode}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def page(browser):
    """A fresh tab, over its own DevTools websocket."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{browser}/json/list", timeout=30) as answer:
        targets = [t for t in json.loads(answer.read()) if t["type"] == "page"]
    with connect(targets[0]["webSocketDebuggerUrl"], max_size=2**24, open_timeout=30) as socket:
        yield DevTools(socket)


@pytest.mark.slow
def test_type_submit_and_read_the_translation(converted, page):
    model = converted("small-en-de")
    torch.set_num_threads(2)
    offline = Translator.from_pretrained(model).translate([SENTENCE], num_beams=5)[0].hypotheses
    server = ServerProcess(model, "--num-beams", "5")
    try:
        page.call("Page.enable")
        page.call("Page.navigate", url=server.url + "/")
        page.wait_for("document.readyState === 'complete' && document.getElementById('pair').textContent"
                      ".includes('en \\u2192 de')")

        page.evaluate("document.getElementById('source').focus()")
        page.call("Input.insertText", text=SENTENCE)  # typed into the focused text box
        assert page.evaluate("document.getElementById('source').value") == SENTENCE
        page.click("#translate")
        page.wait_for("document.getElementById('status').textContent === 'done'")
        assert page.evaluate("document.querySelector('.translation').textContent") == offline[0].text
        shown = page.evaluate("document.querySelector('.result .score:not(.source)').textContent")
        assert shown.startswith("score: ") and abs(float(shown[7:]) - offline[0].score) <= 1e-4  # 4 decimals shown
        assert page.evaluate("document.querySelectorAll('ol.nbest li').length") == 0

        page.click("#nbest-toggle")
        assert page.evaluate("document.getElementById('nbest-toggle').checked") is True
        page.click("#translate")
        page.wait_for("document.querySelectorAll('ol.nbest li').length > 0")
        listed = page.evaluate("[...document.querySelectorAll('ol.nbest li')].map(li => li.textContent)")
        assert [item.rsplit("  (score: ", 1)[0] for item in listed] == [h.text for h in offline]
        assert all(abs(float(item.rsplit("score: ", 1)[1].rstrip(")")) - h.score) <= 1e-4
                   for item, h in zip(listed, offline))
    finally:
        code, log = server.terminate()
        server.stop()
    assert code == 0, log
