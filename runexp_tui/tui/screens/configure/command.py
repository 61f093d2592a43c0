"""The Command part of the Configure form: the command line and the script's flags."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Label

from runexp_tui.core import cmdline
from runexp_tui.core.configure_checks import FieldError, command_problem, wandb_switch_note
from runexp_tui.tui.screens.configure.common import Section, section_title

if TYPE_CHECKING:
    from runexp_tui.core.analysis.model import AnalysisResult, CliFlag


class CommandSection(Section):
    """The command field and a table of the entry point's flags (Enter on one sets its value).

    ``touched``: the user has edited the command, so a new entry point no longer replaces it
    (the screen clears it when another repository is scanned).
    """

    MSG_ID = "command-msg"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.flags: list[CliFlag] = []  # the entry point's CLI flags
        self.touched = False
        self._switch_note: tuple[str, str] = ("", "")  # (message, token it is about)

    def compose(self) -> ComposeResult:
        yield section_title("Command")
        with Horizontal(classes="row"):
            yield Label("Command", classes="field-label")
            yield Input(id="command", placeholder="e.g. python train.py --epochs 5")
        yield Label("", id="command-msg", classes="msg")
        yield Label("Flags of the script (Enter on a row to set a value):", classes="hint")
        yield DataTable(id="flags", cursor_type="row")

    def setup(self) -> None:
        self.query_one("#flags", DataTable).add_columns("Flag", "Default", "Value", "Help")

    @property
    def value(self) -> str:
        return self.query_one("#command", Input).value

    # ----- set by the screen ---------------------------------------------------------------------
    def fill(self, command: str) -> None:
        """The saved command; it counts as the user's own when it says something."""
        self.loading = True
        self.query_one("#command", Input).value = command
        self.loading = False
        self.touched = bool(command)

    def entry_changed(self, entry: str | None) -> None:
        """A new entry point suggests its command, unless the user wrote their own."""
        if entry and not self.loading and not self.touched:
            self.set_command(cmdline.default_command(entry))

    def suggest_blank(self) -> None:
        """No entry point: the suggested command is empty (the user's own is kept)."""
        if not self.touched:
            self.set_command("")

    def set_flags(self, flags: Iterable[CliFlag]) -> None:
        self.flags = list(flags)
        self.redraw_flags()

    def show_analysis(self, analysis: AnalysisResult | None, error: str | None = None) -> None:
        """The line under the command once the entry point is read (or could not be)."""
        if error:
            self.set_msg("#command-msg", error, error=True)
        elif analysis is not None and (getattr(analysis, "syntax_errors", None) or ()):
            e = analysis.syntax_errors[0]
            self.set_msg(
                "#command-msg",
                f"! the script has a syntax error near line {e.line}; it may fail to run",
                error=True,
            )
        else:
            self.check(self.value)

    def turn_on_script_wandb(
        self, analysis: AnalysisResult | None, *, wandb_off: bool, project: str | None
    ) -> None:
        """The script logs to wandb only behind its own switch (`wandb_log`, `--track`): with
        W&B chosen, the command turns it on, and sets the chosen project where it can."""
        wb = getattr(analysis, "wandb", None)
        switch = getattr(wb, "switch", None)
        if wb is None or not switch or wandb_off:
            return
        field = self.query_one("#command", Input)
        try:
            new = cmdline.with_wandb_switch(field.value, switch, wb.project_arg, project)
        except ValueError:
            return
        if new != field.value:
            self._switch_note = (wandb_switch_note(switch, wb.project_arg), switch[0])
            self.set_command(new)
            self.check(new)

    # ----- read by the screen --------------------------------------------------------------------
    def problem(self) -> FieldError | None:
        """What blocks confirming this command, or None."""
        problem = command_problem(self.value.strip())
        if problem is None:
            return None
        return FieldError("command", f"✗ Command: {problem.form_message}")

    # ----- the command and its flags -------------------------------------------------------------
    def set_command(self, text: str) -> None:
        self.loading = True
        self.query_one("#command", Input).value = text
        self.loading = False
        self.redraw_flags()
        self.check(text)

    def check(self, text: str) -> bool:
        """Say next to the command what is wrong with it; True when it can be run."""
        problem = command_problem(text)
        if problem is not None:
            self.set_msg("#command-msg", f"✗ {problem.field_message}", error=True)
            return False
        # the note on the script's own wandb switch stays while the command still turns it on
        note, token = self._switch_note
        self.set_msg("#command-msg", note if token and token in text else "")
        return True

    @on(Input.Changed, "#command")
    def _command_changed(self, event: Input.Changed) -> None:
        if self.loading:
            return
        self.touched = True
        if self.check(event.value):
            self.redraw_flags()

    def redraw_flags(self) -> None:
        table = self.query_one("#flags", DataTable)
        cursor = table.cursor_row
        table.clear()
        try:
            current = cmdline.flag_values(self.value)
        except ValueError:
            current = {}
        for f in self.flags:
            value = current.get(f.flag, "")
            table.add_row(f.flag, f.default or "", value or "", (f.help or "")[:80], key=f.flag)
        if not self.flags:
            table.add_row("—", "", "", "no argparse flags found", key="none")
        if table.row_count:
            table.move_cursor(row=min(max(cursor, 0), table.row_count - 1))
        # DataTable widens its columns on idle but keeps lines it drew before at the old widths
        # (header and first row misaligned); drop its line caches once that has happened.
        table.call_after_refresh(table.notify_style_update)

    @on(DataTable.RowSelected, "#flags")
    @work(exclusive=True, group="flag-edit")
    async def _edit_flag(self, event: DataTable.RowSelected) -> None:
        flag = event.row_key.value
        spec = next((f for f in self.flags if f.flag == flag), None)
        if spec is None or flag is None:
            return
        from runexp_tui.tui.screens.edit_value import EditValueScreen

        command = self.value
        try:
            current = cmdline.flag_values(command).get(flag) or ""
        except ValueError:
            current = ""
        value = await self.app.push_screen_wait(
            EditValueScreen(
                f"{flag}", spec.help or "", current or "", placeholder=f"default: {spec.default}"
            )
        )
        if value is None:
            return
        try:
            new = cmdline.set_flag(command, flag, value, remove=(value == ""), equals=spec.equals)
        except ValueError as exc:
            self.set_msg("#command-msg", f"✗ {exc}", error=True)
            return
        self.set_command(new)
        self.touched = True
