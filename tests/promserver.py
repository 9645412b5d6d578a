"""Debian's Prometheus, started by a test on loopback: a real server that
scrapes the exporter and answers PromQL."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request

from waiting import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """Prometheus scraping every second the targets written with
    ``scrape()``; its data in the directory ``tmp``. ``job``: more of the
    scrape job's settings, YAML lines indented as its keys (scheme,
    tls_config, basic_auth...)."""

    def __init__(self, tmp: str, job: str = ""):
        self.targets = os.path.join(tmp, "targets.json")
        self.scrape([])
        config = os.path.join(tmp, "prometheus.yml")
        with open(config, "w") as f:
            f.write(
                "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
                "scrape_configs:\n- job_name: pyrunq\n  file_sd_configs:\n"
                f"  - files: [{self.targets}]\n    refresh_interval: 1s\n" + job
            )
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = open(os.path.join(tmp, "prometheus.log"), "w")
        self.proc = subprocess.Popen(
            [
                shutil.which("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={os.path.join(tmp, 'data')}",
                f"--web.listen-address={self.url[len('http://') :]}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(self._ready, every=0.2)
        except AssertionError:
            self.stop()
            raise

    def _ready(self) -> bool:
        assert self.proc.poll() is None, "prometheus exited"
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def scrape(self, urls: list[str]) -> None:
        hosts = [urllib.parse.urlsplit(u).netloc for u in urls]
        with open(self.targets + ".tmp", "w") as f:
            json.dump([{"targets": hosts}], f)
        os.replace(self.targets + ".tmp", self.targets)

    def query(self, promql: str) -> list:
        qs = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{qs}", timeout=10) as r:
            doc = json.load(r)
        assert doc["status"] == "success", doc
        return doc["data"]["result"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()
