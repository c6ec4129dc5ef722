"""The README's quickstart snippet, run verbatim against a real anvil deployment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from chain import manifest
from chain.anvil import Anvil
from chain.contracts import Protocol
from tests.chain.flows import NATIVE

README = Path(__file__).resolve().parent.parent / "README.md"


def snippet(name: str) -> str:
    text = README.read_text()
    m = re.search(rf"<!-- snippet:{name} -->\s*```python\n(.*?)```\s*<!-- /snippet -->", text, re.S)
    assert m, f"README has no snippet {name}"
    return m.group(1)


def test_quickstart_mints_a_prompt_and_posts_a_job(anvil: Anvil, protocol: Protocol, tmp_path: Path) -> None:
    path = manifest.write(protocol.deployment, tmp_path / "31337.json")
    prompts_before = protocol.market.functions.promptCount().call()
    jobs_before = protocol.compute.functions.jobCount().call()
    out = subprocess.run(
        [sys.executable, "-c", snippet("quickstart")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ASCENDNET_RPC_URL": anvil.rpc_url, "ASCENDNET_MANIFEST": str(path)},
    )
    assert out.returncode == 0, out.stderr
    assert protocol.market.functions.promptCount().call() == prompts_before + 1
    assert protocol.compute.functions.jobCount().call() == jobs_before + 1
    job = protocol.compute.functions.getJob(jobs_before + 1).call()
    assert job[1] == NATIVE and job[3] == 1  # asset, state Open
    assert f"posted job {jobs_before + 1}" in out.stdout and "state 1" in out.stdout
