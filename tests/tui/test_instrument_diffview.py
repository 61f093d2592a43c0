"""DiffView and HunkList on their own: layout, syntax tokens, labels, rendering of big files."""

from __future__ import annotations

from textual.app import App, ComposeResult

from runexp_tui.core.analysis import analyze_source
from runexp_tui.core.instrument import build_proposal, side_by_side
from runexp_tui.core.instrument.display import hunk_title, layout
from runexp_tui.tui.widgets.diff_tokens import highlight_python
from runexp_tui.tui.widgets.diff_view import DiffView
from runexp_tui.tui.widgets.hunk_list import hunk_list_text

SCRIPT = '''"""A docstring
spanning lines."""
import argparse

import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    for step in range(10):
        loss = model(torch.randn(8, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    print("done")


if __name__ == "__main__":
    main()
'''


def make_proposal(text: str = SCRIPT, path: str = "/x/proj/train.py"):
    return build_proposal(text, analyze_source(text, path), project="demo")


def test_tokens_stay_on_their_lines_across_multiline_strings_and_odd_characters():
    lines = ['s = """one', "two", 'three"""', "x = 1\r", "\tif x:\x0c", "café = 'é'"]
    tokens = highlight_python(lines)
    assert len(tokens) == len(lines)
    # the middle of the triple-quoted string is string, not a name
    assert tokens[1] and all(cat == "str" for cat, _ in tokens[1])
    assert any(cat == "num" for cat, _ in tokens[3])
    assert "".join(t for _, t in tokens[5]) == "café = 'é'"
    assert highlight_python([]) == []


def test_layout_puts_a_header_before_each_hunk_and_stacks_old_above_new():
    proposal = make_proposal()
    assert proposal.hunks
    rows = side_by_side(proposal)
    split = layout(rows, "split")
    headers = [ln.hunk_id for ln in split if ln.kind == "header"]
    assert headers == [h.id for h in proposal.hunks]
    assert len(split) == len(rows) + len(proposal.hunks)
    unified = layout(rows, "unified")
    assert {ln.kind for ln in unified} <= {"header", "same", "left", "right"}
    inserted = sum(len(h.new_lines) for h in proposal.hunks)
    assert sum(1 for ln in unified if ln.kind == "right") == inserted
    # right lines index into their hunk's new lines
    for ln in unified:
        if ln.kind == "right":
            assert ln.row.right_text == proposal.hunk(ln.hunk_id).new_lines[ln.index]


def test_hunk_titles_name_purpose_and_variable():
    proposal = make_proposal()
    titles = {h.kind: hunk_title(h) for h in proposal.hunks}
    assert titles["train_log"] == ("train log", "", "loss")
    purpose, detail, var = titles["init"]
    assert purpose == "init" and var == "args" and "args" in detail
    text = hunk_list_text(proposal.hunks, [proposal.hunks[0].id], proposal.hunks[1].id).plain
    assert text.startswith(f"1/{len(proposal.hunks)} included")
    assert "▶ ✗ 2" in text and " ✓ 1" in text


class DiffApp(App[None]):
    def compose(self) -> ComposeResult:
        yield DiffView(id="d")


async def test_big_file_renders_only_what_is_visible_and_keeps_columns_aligned():
    body = "".join(f"def f{i}(x):\n    y = x * {i}  # café\n    return y\n\n" for i in range(1250))
    text = SCRIPT.replace('    print("done")\n', '    print("done")\n\n' + body)
    proposal = make_proposal(text)
    assert len(proposal.lines) > 5000
    app = DiffApp()
    async with app.run_test(size=(140, 30)) as pilot:
        view = app.query_one(DiffView)
        view.set_proposal(proposal)
        await pilot.pause()
        assert view.effective_mode == "split"
        assert view.virtual_size.height == len(view.display_lines)
        assert len(view._cache) <= view.size.height  # only the visible lines were drawn
        width = view.scrollable_content_region.width
        for y in range(view.size.height):
            assert view.render_line(y).cell_length == width
        view.scroll_end(animate=False)
        await pilot.pause()
        last = view.render_line(view.size.height - 1).text
        assert "if __name__" in last or "main()" in last or last.strip() == ""
        view.next_hunk(-1)  # wraps to the last hunk (finish, near the end)
        await pilot.pause()
        assert view.current == proposal.hunks[-1].id
        header = view.header_line(view.current)
        top = view.scroll_offset.y
        assert top <= header < top + view.size.height
        shown = "\n".join(view.render_line(y).text for y in range(view.size.height))
        assert "FINISH" in shown and "wandb.finish()" in shown
