import pytest

from data.schema import Catalog, Interactions
from data.settings import SAMPLE_DIR


@pytest.fixture(scope="session")
def office() -> tuple[Catalog, Interactions]:
    """The bundled real sample (2,417 Amazon office products, 4,905 shoppers), loaded once per test run."""
    from data.load import load_catalog, load_interactions

    catalog, _ = load_catalog(SAMPLE_DIR / "items.jsonl")
    interactions, _ = load_interactions(SAMPLE_DIR / "interactions.jsonl", catalog)
    return catalog, interactions


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    """A throwaway PostgreSQL server on 127.0.0.1 for the run (Debian's package; `.ci/run` installs it), its URL.

    As root the server runs as the `postgres` user, as PostgreSQL requires."""
    import glob
    import os
    import shutil
    import socket
    import subprocess
    import tempfile

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("needs PostgreSQL: apt-get install -y postgresql (.ci/run installs it)")
    bin_dir = os.path.dirname(found[-1])
    folder = tempfile.mkdtemp(prefix="concierge-pg-")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = (
        f"{bin_dir}/initdb -D {folder}/data -A trust -U concierge >/dev/null && "
        f"{bin_dir}/pg_ctl -D {folder}/data -o '-p {port} -k {folder} -c listen_addresses=127.0.0.1' "
        f"-l {folder}/log -w start >/dev/null"
    )
    stop = f"{bin_dir}/pg_ctl -D {folder}/data -m fast stop >/dev/null"
    as_root = os.geteuid() == 0
    if as_root:
        shutil.chown(folder, user="postgres")

    def run(command: str) -> subprocess.CompletedProcess:
        argv = ["su", "postgres", "-s", "/bin/bash", "-c", command] if as_root else ["bash", "-c", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120)

    started = run(start)
    if started.returncode != 0:
        pytest.fail(f"PostgreSQL did not start: {started.stderr[-2000:]}")
    yield f"postgresql://concierge@127.0.0.1:{port}/postgres"
    run(stop)
    shutil.rmtree(folder, ignore_errors=True)
