"""The technician's counter through the CLI on a copy of the sandbox district: repair with a loaner, due dates in
school days (Thanksgiving, and a snow day at one school only), overdue, return, the empty pool, refusals."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import main
from orchestrator.inventory.devices import Device, load_inventory, write_inventory_csv
from orchestrator.inventory.edits import history_path, read_history
from orchestrator.inventory.loans import LoanError
from orchestrator.jobs.lifecycle import repair_device
from orchestrator.jobs.workspace import open_workspace

SNOW_DAY = """
  lincoln-elementary:
    no_school:
      - date: 2026-12-02
        reason: Snow day
"""


@pytest.fixture
def district(sample_repo: Path) -> Path:
    """The sample district with a snow day on 2026-12-02 at Lincoln only."""
    calendar = sample_repo / "policies" / "calendar.yaml"
    calendar.write_text(calendar.read_text().rstrip("\n") + SNOW_DAY)
    return sample_repo / "orchestrator.yaml"


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args])


def devices(config: Path) -> dict[str, Device]:
    return load_inventory(config.parent / "inventory" / "devices.csv").by_serial()


def history(config: Path, serial: str) -> list[tuple[str, str, str]]:
    path = history_path(config.parent / "inventory" / "devices.csv")
    return [(h.field, h.old, h.new) for h in read_history(path, serial)]


def overdue(config: Path, *args: str) -> dict[tuple[str, str], object]:
    result = run(config, "inventory", "overdue", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return {(r["kind"], r["serial"]): r["school_days_overdue"] for r in json.loads(result.output)["rows"]}


def test_repair_lends_a_loaner_due_in_school_days_and_return_closes_the_loop(district: Path) -> None:
    result = run(district, "inventory", "repair", "CB0000001", "--reason", "cracked screen", "--date", "2026-11-20")
    assert result.exit_code == 0, result.output
    # Fri 11-20 + 2 school days = Tue 11-24. The loaner: 10 school days, skipping Thanksgiving (11-25..27) and
    # Lincoln's snow day (12-02) → Thu 12-10.
    assert "due back by 2026-11-24" in result.output
    assert "loaner CB0000025" in result.output and "due 2026-12-10" in result.output
    assert "@district.example" not in result.output and "cracked" not in result.output
    # Washington has no snow day: its loaner is due a school day earlier.
    other = run(district, "inventory", "repair", "CB0000002", "--date", "2026-11-20")
    assert other.exit_code == 0, other.output
    assert "loaner CB0000026" in other.output and "due 2026-12-09" in other.output

    now = devices(district)
    device, loaner = now["CB0000001"], now["CB0000025"]
    assert (device.inventoryStatus, device.repairSince) == ("repair", "2026-11-20")
    assert device.repairReason == "cracked screen"
    assert device.assignedStudent == "student000001@district.example"
    assert (loaner.inventoryStatus, loaner.assignedStudent) == ("loaner", "student000001@district.example")
    assert (loaner.loanFor, loaner.loanedOn, loaner.loanDue) == ("CB0000001", "2026-11-20", "2026-12-10")
    assert ("inventoryStatus", "active", "repair") in history(district, "CB0000001")
    assert ("repairReason", "", "cracked screen") in history(district, "CB0000001")
    assert ("loanFor", "", "CB0000001") in history(district, "CB0000025")
    assert ("assignedStudent", "", "student000001@district.example") in history(district, "CB0000025")
    shown = run(district, "inventory", "history", "CB0000001")
    assert "repairReason" in shown.output and "cracked" not in shown.output  # a repair reason is a note
    assert "cracked screen" in run(district, "inventory", "history", "CB0000001", "--show-pii").output
    exported = run(district, "inventory", "export", "--format", "json")
    assert "cracked" not in exported.output and "@district.example" not in exported.output

    # 12-11: the repair is 9 school days late at Lincoln (the snow day does not count), 10 at Washington; the
    # loaners 1 and 2. A repair marked by hand (CB0000033, no repairSince) is listed as unknown, not dropped.
    late = overdue(district, "--date", "2026-12-11")
    assert late[("repair", "CB0000001")] == 9 and late[("repair", "CB0000002")] == 10
    assert late[("loaner", "CB0000025")] == 1 and late[("loaner", "CB0000026")] == 2
    assert late[("repair", "CB0000033")] == "unknown"
    # On its due date a loaner is not overdue; --school keeps to one school.
    on_due = overdue(district, "--date", "2026-12-10", "--school", "lincoln-elementary")
    assert ("loaner", "CB0000025") not in on_due and on_due[("repair", "CB0000001")] == 8
    assert all(serial != "CB0000002" for _, serial in on_due)
    csv_out = run(district, "inventory", "overdue", "--format", "csv", "--date", "2026-12-11")
    assert csv_out.output.splitlines()[0].startswith("school,kind,serial,asset,student,since,due,school_days_overdue")
    assert "@district.example" not in csv_out.output

    back = run(district, "inventory", "return", "CB0000001")
    assert back.exit_code == 0, back.output
    assert "CB0000025: back in the pool of lincoln-elementary" in back.output
    now = devices(district)
    assert (now["CB0000001"].inventoryStatus, now["CB0000001"].repairSince) == ("active", "")
    loaner = now["CB0000025"]
    assert (loaner.inventoryStatus, loaner.assignedStudent, loaner.loanFor, loaner.loanDue) == ("loaner", "", "", "")
    assert ("loanFor", "CB0000001", "") in history(district, "CB0000025")
    assert ("inventoryStatus", "repair", "active") in history(district, "CB0000001")
    late = overdue(district, "--date", "2026-12-11")
    assert ("repair", "CB0000001") not in late and ("loaner", "CB0000025") not in late

    # The next repair at Lincoln gets the loaner that has rested longest: CB0000105 was never lent.
    again = run(district, "inventory", "repair", "CB0000005", "--date", "2026-12-14")
    assert again.exit_code == 0, again.output
    assert "loaner CB0000105" in again.output


def test_an_empty_pool_names_the_nearest_pools_and_changes_nothing(district: Path) -> None:
    for serial in ("CB0000001", "CB0000005"):
        assert run(district, "inventory", "repair", serial, "--date", "2026-11-20").exit_code == 0
    csv_file = district.parent / "inventory" / "devices.csv"
    before = csv_file.read_bytes()
    result = run(district, "inventory", "repair", "CB0000013", "--date", "2026-11-20")
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "no free loaner at lincoln-elementary (2 loaner(s), none free)" in message
    # Same level first (Washington is the other elementary school), then most free, then by name.
    assert "Nearest pools with free loaners: washington-elementary (2 free), jefferson-high (2 free)" in message
    assert csv_file.read_bytes() == before

    refused = run(district, "inventory", "repair", "CB0000013", "--loaner", "CB0000027", "--date", "2026-11-20")
    assert refused.exit_code == 1 and "--from-pool roosevelt-middle" in " ".join(refused.output.split())
    assert csv_file.read_bytes() == before

    lent = run(
        district, "inventory", "repair", "CB0000013", "--from-pool", "washington-elementary", "--date", "2026-11-20"
    )
    assert lent.exit_code == 0, lent.output
    assert "loaner CB0000026" in lent.output and "pool of washington-elementary" in lent.output
    assert devices(district)["CB0000026"].loanFor == "CB0000013"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("repair", "CB0000011"), "CB0000011 is lost: mark it found first"),
        (("repair", "CB0000033"), "CB0000033 is already in repair"),
        (("repair", "CB0000025"), "CB0000025 is a loaner"),
        (("repair", "CB0000001", "--loaner", "CB0000004"), "CB0000004 is not a loaner"),
        (("repair", "CB0000404"), "no device with serial 'CB0000404'"),
        (("repair", "CB0000001", "--from-pool", "lincoln"), "no school named 'lincoln'"),
        (("return", "CB0000001"), "CB0000001 is not in repair"),
        (("repair", "CB0000001", "--no-loaner", "--loaner", "CB0000025"), "--no-loaner goes without"),
    ],
)
def test_the_counter_refuses_what_it_cannot_do_and_writes_nothing(
    district: Path, args: tuple[str, ...], expected: str
) -> None:
    csv_file = district.parent / "inventory" / "devices.csv"
    before = csv_file.read_bytes()
    result = (
        run(district, "inventory", *args, "--date", "2026-11-20")
        if args[0] == "repair"
        else run(district, "inventory", *args)
    )
    assert result.exit_code != 0
    assert expected in " ".join(result.output.split())
    assert csv_file.read_bytes() == before
    assert not history_path(csv_file).exists()


def test_a_loaner_on_loan_is_not_lent_twice_nor_returned_while_its_device_is_in_repair(district: Path) -> None:
    assert run(district, "inventory", "repair", "CB0000001", "--date", "2026-11-20").exit_code == 0
    twice = run(district, "inventory", "repair", "CB0000005", "--loaner", "CB0000025", "--date", "2026-11-20")
    assert twice.exit_code == 1 and "CB0000025 is not free: on loan for CB0000001" in " ".join(twice.output.split())
    alone = run(district, "inventory", "return", "CB0000025")
    assert alone.exit_code == 1 and "inventory return CB0000001" in " ".join(alone.output.split())
    # Someone set the device active by hand, skipping `return`: the loaner can then come back on its own.
    assert run(district, "inventory", "set", "CB0000001", "--status", "active").exit_code == 0
    back = run(district, "inventory", "return", "CB0000025")
    assert back.exit_code == 0, back.output
    assert "loaner CB0000025: back in the pool of lincoln-elementary" in back.output
    assert "back from repair" not in back.output and "CB0000001 is active" in back.output
    loaner = devices(district)["CB0000025"]
    assert (loaner.assignedStudent, loaner.loanFor, loaner.loanDue) == ("", "", "")
    assert ("loanFor", "CB0000001", "") in history(district, "CB0000025")


def test_without_a_repair_policy_the_counter_says_what_to_add(district: Path) -> None:
    (district.parent / "policies" / "repair.yaml").unlink()
    result = run(district, "inventory", "repair", "CB0000001", "--date", "2026-11-20")
    assert result.exit_code == 1
    assert "no RepairPolicy" in result.output and "kind: RepairPolicy" in " ".join(result.output.split())
    assert run(district, "inventory", "overdue").exit_code == 1


def test_a_due_date_past_the_calendar_end_is_its_last_class_day(district: Path) -> None:
    result = run(district, "inventory", "repair", "CB0000001", "--date", "2028-05-24")
    assert result.exit_code == 0, result.output
    assert "due 2028-05-31" in result.output
    assert "last class day 2028-05-31" in " ".join(result.output.split())


def test_a_loaner_lent_before_the_summer_is_due_in_the_next_school_year(district: Path) -> None:
    result = run(district, "inventory", "repair", "CB0000001", "--date", "2027-05-24")
    assert result.exit_code == 0, result.output
    # 3 class days left in May, the summer break counts none, then 7 from the 2027-28 first day (08-18).
    assert "due back by 2027-05-26" in result.output and "due 2027-08-26" in result.output
    assert "last class day" not in result.output


def test_a_change_made_meanwhile_at_another_counter_is_never_overwritten(district: Path) -> None:
    ws = open_workspace(str(district))
    other = run(district, "inventory", "set", "CB0000013", "--status", "lost")  # another technician, same minute
    assert other.exit_code == 0, other.output
    with pytest.raises(LoanError, match="changed while this command ran"):
        repair_device(ws, "CB0000001", on=dt.date(2026, 11, 20))
    now = devices(district)
    assert now["CB0000013"].inventoryStatus == "lost" and now["CB0000001"].inventoryStatus == "active"


def test_a_repair_the_calendar_cannot_count_is_listed_as_unknown_with_why(district: Path) -> None:
    path = district.parent / "inventory" / "devices.csv"
    inventory = load_inventory(path)
    for device in inventory.devices:
        if device.serialNumber == "CB0000001":  # logged in the summer, after the calendar's last day
            device.inventoryStatus, device.repairSince = "repair", "2028-07-01"
    path.write_text(write_inventory_csv(inventory.devices))
    late = run(district, "inventory", "overdue", "--format", "json", "--date", "2028-07-10")
    assert late.exit_code == 0, late.output
    row = next(r for r in json.loads(late.output)["rows"] if r["serial"] == "CB0000001")
    assert row["school_days_overdue"] == "unknown" and "add the next term" in row["problem"]
    # At the counter the same gap stops the repair instead of guessing a due date.
    refused = run(district, "inventory", "repair", "CB0000005", "--date", "2028-07-01")
    assert refused.exit_code == 1 and "has no class day after 2028-05-31" in " ".join(refused.output.split())
