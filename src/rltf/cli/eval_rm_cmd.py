"""``rltf eval-rm --model DIR --data held_out.jsonl``: span precision / recall / F1 of a span reward
model against held-out annotations, and how often its output fails to parse."""
from __future__ import annotations

from rltf.cli import add_command
from rltf.cli.common import bounded, write_json
from rltf.spans.annotate import read_annotations


def register(sub) -> None:
    p = add_command(sub, "eval-rm", description=__doc__)
    p.add_argument("--model", required=True, help="reward model: a model directory, checkpoint or run directory")
    p.add_argument("--data", required=True, help="held-out annotation records (JSONL)")
    p.add_argument("--n", type=bounded(int, ge=0), default=0, help="records scored (0 = all)")
    p.add_argument("--iou", type=bounded(float, gt=0, le=1), default=0.5,
                   help="character IoU for a predicted span to match a gold one")
    p.add_argument("--max-new-tokens", type=bounded(int, ge=1), default=256, help="generation budget of the reward model")
    p.add_argument("--batch-size", type=bounded(int, ge=1), default=32, help="records generated together")
    p.add_argument("--dtype", default="auto", help="auto, float32, bfloat16")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--output", help="write the full result as JSON here")
    p.set_defaults(func=run)


def run(args) -> int:
    from rltf.eval.reward_model import evaluate_reward_model
    from rltf.feedback.reward_model import SpanRewardModel

    records = read_annotations(args.data)
    records = records[: args.n] if args.n else records
    rm = SpanRewardModel.from_pretrained(args.model, dtype=args.dtype, device=args.device, batch_size=args.batch_size,
                                         max_new_tokens=args.max_new_tokens)
    result = evaluate_reward_model(rm, records, iou=args.iou)
    result["model"] = args.model
    if args.output:
        write_json(args.output, result)
    print_rm_result(result)
    for ex in result["examples"][:2]:
        print("-" * 60 + f"\nanswer: {ex['answer'][:200]}\ngold:   {ex['gold'][:200]}\nmodel:  {ex['output'][:300]}")
    return 0


def print_rm_result(result) -> None:
    print(f"span F1 {result['f1']:.3f} (precision {result['precision']:.3f}, recall {result['recall']:.3f}) on "
          f"{result['n']} held-out records; parse failures {result['parse_failure_rate']:.1%}"
          + (f" {result['parse_failures']}" if result["parse_failures"] else "")
          + f", lenient parses {result['lenient_parse_rate']:.1%}")
    for label, r in result["by_label"].items():
        print(f"  {label}: P {r['precision']:.3f} R {r['recall']:.3f} F1 {r['f1']:.3f}")
