import subprocess
import sys

from core.cli import COMMANDS, main


def test_every_command_is_listed(capsys):
    try:
        main(["--help"])
    except SystemExit as end:
        assert end.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_bad_input_exits_2_with_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "core", "make-demo-data", "--out", str(tmp_path),
                             "--clips-per-class", "0"], capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "clips_per_class" in lines[0] and "Traceback" not in result.stderr
