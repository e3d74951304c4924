"""Headless Chromium for the report test: Debian's `chromium` package, installed here when missing
(`apt-get install -y chromium`, about 20 s; the test is skipped, saying why, where that is impossible).
Flags: a fresh profile, and nothing that reaches the network (this machine's network is closed)."""

import html
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic")


def find_or_install_chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium is not installed and this user cannot apt-get install it; run: apt-get install -y chromium")
    tried = []
    for command in (["apt-get", "install", "-y", "chromium"], ["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=900,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        tried.append(f"{' '.join(command)}: exit {done.returncode}")
        if shutil.which("chromium"):
            return shutil.which("chromium")
    pytest.skip("chromium could not be installed (" + "; ".join(tried) + ")")


# Runs once the page has loaded; the verdict goes into an attribute that --dump-dom prints.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]);
  document.body.setAttribute("data-images", JSON.stringify(images));
});
</script>"""


def rendered_images(chromium: str, page_html: str) -> list[tuple[str, bool, int, int]]:
    """(alt, complete, naturalWidth, naturalHeight) of every <img> after Chromium loaded the page."""
    with tempfile.TemporaryDirectory() as scratch:
        page = os.path.join(scratch, "page.html")
        with open(page, "w") as f:
            f.write(page_html.replace("</body>", PROBE + "</body>"))
        done = subprocess.run([chromium, *FLAGS, f"--user-data-dir={scratch}/profile", "--virtual-time-budget=10000",
                               "--dump-dom", f"file://{page}"], capture_output=True, text=True, timeout=120)
    match = re.search(r'data-images="([^"]*)"', done.stdout)
    assert match, f"chromium printed no verdict (exit {done.returncode}): {done.stderr[-500:]}"
    return [tuple(x) for x in json.loads(html.unescape(match.group(1)))]
