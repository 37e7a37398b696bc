"""The exit codes are a contract (README "Command line"): one enum, fixed numbers."""

from supervisor.exitcodes import ExitCode


def test_the_numbers_are_the_contract():
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0,
        "FAILED": 1,
        "USAGE": 2,
        "INTERNAL": 3,
        "INTERRUPTED": 130,
    }


def test_a_code_prints_as_its_number():
    """Messages and sinks show ``exit 130``, on Python 3.10 as on 3.11+."""
    assert str(ExitCode.INTERRUPTED) == "130"
    assert f"exit {ExitCode.USAGE}" == "exit 2"
