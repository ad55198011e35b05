"""Extraction speed: utterances per second for each extractor, and the time of a second, fully cached run.

    .venv/bin/python benchmarks/extract.py [--clips 24] [--seconds 2.0] [--text-model DIR] [--device cpu]

Media are generated (MELD layout, mp4 with sound and moving 320x240 frames) with the test
generators in ``sync_tva.testing``. Without ``--text-model`` the text encoder is a randomly
initialised RoBERTa of roberta-base size (speed does not depend on the weights); the visual
encoder is ResNet-50 with random weights at 224 px; audio is openSMILE ComParE_2016 LLDs.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from sync_tva.config import load_config
from sync_tva.data.meld import MELD_FILES, read_meld
from sync_tva.features.pipeline import build_extractors, extract
from sync_tva.features.store import FeatureStore
from sync_tva.testing import make_meld_tree, make_text_model, write_clip

ROOT = Path(__file__).resolve().parents[1]


def roberta_base_sized(folder: Path) -> Path:
    """A random RoBERTa with roberta-base's shape (12 layers, 768 wide) and the tests' small tokenizer."""
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel

    make_text_model(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    RobertaModel(RobertaConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)).save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=24, help="utterances (clips) in the generated corpus")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each clip")
    parser.add_argument("--text-model", type=Path, default=None, help="local text model directory (default: random base-size)")
    parser.add_argument("--device", default="cpu", help="features.device for the encoders")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        per_split = max(1, args.clips // 3)
        meld = make_meld_tree(tmp / "meld", per_split=per_split, clips=False)
        for _, folder in MELD_FILES.values():  # clips of --seconds at a typical small resolution
            for k in range(per_split):
                clip = meld / folder / f"dia{k // 4}_utt{k % 4}.mp4"
                write_clip(clip, seconds=args.seconds, fps=25, size=(320, 240), seed=k)
        text_model = args.text_model or roberta_base_sized(tmp / "text")
        cfg = load_config(
            ROOT / "configs" / "meld.yaml",
            [f"data.root={meld}", f"features.text.model={text_model}", "features.visual.weights=null",
             f"features.store={tmp / 'store'}", f"features.device={args.device}", "features.progress=false"],
        )
        raw = read_meld(cfg)
        utts = raw.train + raw.dev + raw.test
        extractors = build_extractors(cfg, ["text", "audio", "visual"])
        print(f"{len(utts)} utterances of {args.seconds:.1f} s; device {args.device}")
        rates = {}
        for ex in extractors:
            start = time.perf_counter()
            chunk = cfg.features.text.batch_size  # utterances per call, as in the pipeline
            for i in range(0, len(utts), chunk):
                ex.extract(utts[i : i + chunk])
            seconds = time.perf_counter() - start
            rates[ex.modality] = round(len(utts) / seconds, 2)
            print(f"{ex.modality:7s} {type(ex).__name__:16s} dim {ex.dim:5d}: {rates[ex.modality]:8.2f} utt/s ({seconds:.2f} s)")
        store = FeatureStore(cfg.features.store)
        start = time.perf_counter()
        first = extract(raw, extractors, store, progress=False)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        second = extract(raw, extractors, store, progress=False)
        warm = time.perf_counter() - start
        print(f"full run into an empty store: {cold:.2f} s {first.to_dict()}")
        print(f"second, fully cached run:     {warm:.3f} s {second.to_dict()}")
        print(json.dumps({"utt_per_s": rates, "cold_run_s": round(cold, 2), "cached_run_s": round(warm, 3)}))


if __name__ == "__main__":
    main()
