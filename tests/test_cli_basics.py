from __future__ import annotations


def test_help_lists_commands(run_cli):
    result = run_cli("--help")
    assert result.code == 0
    assert "dataset" in result.out


def test_unknown_command_is_usage_error(run_cli):
    result = run_cli("no-such-command")
    assert result.code == 2
