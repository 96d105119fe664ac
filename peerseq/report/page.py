"""`peerseq report`: a recipe's results page (RESULTS.md, RESULTS.json and figures) from its
runs, as its recipe.yaml declares it: a header, then for every group of seed directories found
under ROOT (a corpus, a task and language pair, ...) its sections in order, and hand-written
notes (RECIPE/notes-SCALE.md) where the declaration puts them."""

from __future__ import annotations

import json
from pathlib import Path

from peerseq.errors import PeerseqError
from peerseq.files import atomic_write_text
from peerseq.report import sections
from peerseq.report.claims import claims
from peerseq.report.compare import seeds_of
from peerseq.report.costs import cost_section
from peerseq.report.recipe import Recipe
from peerseq.report.summary import log_tables
from peerseq.report.sweep import sweep
from peerseq.report.systems import Group, other_runs, systems_table


def _section(rec: Recipe, g: Group, sec: dict, scale: str):
    kind = sec["kind"]
    if kind == "systems":
        return systems_table(rec, g, sec) or ([], None)
    if kind == "other_runs":
        return other_runs(rec, g, sec)
    if kind == "costs":
        return cost_section(sec, rec.systems, g.seeds, scale)
    if kind == "logs":
        return log_tables(sec, g.seeds, g.vars), None
    if kind == "claims":
        return claims(rec, g, sec)
    if kind == "sweep":
        return sweep(rec, g, sec)
    return getattr(sections, kind)(rec, g, sec)


def _notes(rec: Recipe, page: dict, scale: str, where: str, fmt: dict) -> list[str]:
    notes = page.get("notes", {})
    if notes.get("at", "end") != where:
        return []
    if any(str(fmt.get(k)) != str(v) for k, v in notes.get("when", {}).items()):
        return []
    f = rec.dir / notes.get("file", "notes-{scale}.md").format(scale=scale)
    if not f.is_file():
        return []
    return [f.read_text().rstrip() + "\n"] if notes.get("strip") else [f.read_text()]


def report(
    rec: Recipe, root: Path, scale: str, results: Path, settings: dict | None = None
) -> dict:
    """Write RESULTS.md and RESULTS.json (figures beside them) -> the JSON record."""
    page = rec.data["page"]
    fmt = dict(page.get("vars", {})) | (settings or {}) | {"scale": scale, "root": str(root)}
    groups = []
    for gd in page["groups"]:
        for d in sorted(p for p in root.glob(gd["glob"].format(**fmt)) if p.is_dir()):
            seeds = seeds_of(d)
            if seeds or gd.get("keep_empty"):
                groups.append((gd, d, seeds))
    if not groups and "empty" not in page:
        raise PeerseqError(f"no runs under {root} (expected {page['groups'][0]['glob']}/s*)")
    first = groups[0][2] if groups else {}
    fmt["seeds"] = ", ".join(map(str, sorted(first)))
    md = [line.format(**fmt) for line in page["header"]]
    md += _notes(rec, page, scale, "start", fmt)
    out = {
        k: (v.format(**fmt) if isinstance(v, str) else v) for k, v in page.get("json", {}).items()
    }
    for gd, d, seeds in groups:
        gvars = fmt | gd.get("vars", {}) | {"group": d.name}
        gvars |= {k: v.format(**gvars) for k, v in gd.get("vars", {}).items()}
        gvars |= {"stem_path": results, "figdir": results.parent / "figures"}
        gvars["seeds"] = ", ".join(map(str, sorted(seeds)))
        g = Group(d.name, d, seeds, gvars)
        rec_json: dict = {"seeds": sorted(seeds)} if gd.get("json_seeds") else {}
        if "heading" in gd:
            md.append(gd["heading"].format(**gvars) + "\n")
        for sec in gd["sections"]:
            lines, value = _section(rec, g, sec, scale)
            md += lines
            if not sec.get("json") or value is None:  # None: the section had nothing to say
                continue
            if sec["kind"] == "claims" and gd.get("json_path"):  # at the top (EVIDENCE.md)
                out.setdefault(sec["json"], []).extend(value)
            else:
                rec_json[sec["json"]] = value
        target = out
        for part in gd.get("json_path", []):
            target = target.setdefault(part.format(**gvars), {})
        target.update(rec_json)
    if not groups:
        md.append(page["empty"].format(**fmt))
    md += _notes(rec, page, scale, "end", fmt)
    results.parent.mkdir(parents=True, exist_ok=True)
    end = "\n" if page.get("final_newline", True) else ""
    # atomic: two reproduce commands (two lanes) may end and write the page at the same moment
    atomic_write_text(results.with_suffix(".md"), "\n".join(md) + end)
    atomic_write_text(results.with_suffix(".json"), json.dumps(out, indent=2, default=str) + "\n")
    return out
