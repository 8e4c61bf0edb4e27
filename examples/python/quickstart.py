"""mmkd from Python in one page: synthesise data, train a multimodal teacher, distil a video-only
student with EDAM-S (downsampling), evaluate both with audio and text missing, and draw the
attention maps the student learnt to imitate.

    PYTHONPATH=build/python .venv/bin/python examples/python/quickstart.py --out runs/quickstart

(or `import mmkd` after `pip install --no-build-isolation .`). 12 s on two idle cores with
the `tiny` data; scale up with --preset small --epochs 8.
"""

import argparse
import logging
import shutil
from pathlib import Path

import torch

import mmkd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/quickstart", help="folder for the data, runs and figure")
    parser.add_argument("--preset", default="tiny", help="synthetic preset (tiny, small, medium, mosei)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--fresh", action="store_true", help="delete --out first")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    out = Path(args.out)
    if args.fresh:
        shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    configs = mmkd.config_dir()

    # 1. Data: the synthetic preset as a MulT pickle (mmkd.data.load reads real CMU-MOSEI files).
    data_file = out / f"{args.preset}.pkl"
    data = mmkd.data.synthesize(args.preset, seed=0)
    mmkd.data.save(data, data_file)
    print(f"data: {data_file}, train vision {tuple(data['train']['vision'].shape)}")

    # 2. The Complete teacher (video, audio, text), and 3. student 5 distilled with EDAM-S down.
    common = {"data.path": str(data_file), "train.epochs": args.epochs, "model.d_model": 16,
              "model.layers": 2, "train.progress": False}
    teacher = resume_or(out / "teacher", lambda run: mmkd.train(
        configs / "teacher_complete.yaml", run=run, overrides=common))
    student = resume_or(out / "student", lambda run: mmkd.distill(
        configs / "table1" / "c5_edam_down.yaml", teacher=teacher.run, run=run, overrides=common))

    # 4. Evaluation with audio and text missing: the teacher loses them, the student never had them.
    for name, run in (("teacher", teacher.run), ("student", student.run)):
        full = mmkd.evaluate(run)["classification"]
        missing = mmkd.evaluate(run, drop=("audio", "text"))["classification"]
        print(f"{name}: acc7 {full['accuracy']:.3f} with every modality, "
              f"{missing['accuracy']:.3f} with video only")

    # 5. Attention maps: the teacher's V<-A map and the student's map distilled from it.
    t_model, s_model = mmkd.Model.load(teacher.run), mmkd.Model.load(student.run)
    clip = {m: data["test"][m][:1] for m in ("vision", "audio", "text")}
    with torch.no_grad():
        t_map = t_model.attention_maps(**clip, transformers="V<-A")["V<-A"][-1, 0]
        s_map = s_model.attention_maps(clip["vision"], transformers="V<-A")["V<-A"][-1, 0]
        prediction = s_model.predict(clip["vision"])
    print(f"student on test clip 0: class {prediction.classes.item():+d} "
          f"(label {mmkd.data.sentiment_class(data['test']['labels'][:1]).item():+d})")
    draw(t_map, s_map, out / "attention.png")


def resume_or(run: Path, start) -> mmkd.RunResult:
    """A finished run is reused, an interrupted one resumed, otherwise started."""
    if (run / "metrics.json").exists():
        return mmkd.RunResult.read(run)
    if (run / "last.pt").exists():
        return mmkd.resume(run)
    return start(run)


def draw(teacher_map: torch.Tensor, student_map: torch.Tensor, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure (pip install matplotlib)")
        return
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
    for ax, m, title in ((axes[0], teacher_map, "teacher V<-A"), (axes[1], student_map, "student V<-A")):
        ax.imshow(m.numpy(), aspect="auto", cmap="viridis")
        ax.set_title(title)
        ax.set_xlabel("key step")
        ax.set_ylabel("query step (video)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
