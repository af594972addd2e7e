"""Hugging Face transformers (PyTorch, CPU, float32) as the reference for the interop tests.

    python core/hf_reference.py JOB.json RESULT.json

It runs in its own resolve (`hf`: torch + transformers), so the tests of our JAX code call it as a
program (the `core:hf_reference` pex). JOB.json says what to do, in this order:

    {"create": {"dir": D, "config": {...LlamaConfig fields...}, "seed": 0}   random weights, saved
     "model": D,                                       the directory the steps below load
     "tokenize": ["text", ...],                        AutoTokenizer's ids, and their decoding
     "logits": {"ids": [[...], ...], "mask": [[...], ...]},   float32 logits [B, S, V]
     "generate": {"ids": [[...], ...], "max_new_tokens": 64}} greedy, one prompt at a time, not
                                                               stopping at EOS
     "time_generate": {...}}                           batched generate, timed (see `time_generate`)
RESULT.json holds "token_ids", "decoded", "logits", "generated" and "timing" for the steps it ran.
"""

import json
import sys
import time
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM


def main(job_path: str, result_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    result: dict = {}
    if "create" in job:
        create = job["create"]
        torch.manual_seed(create.get("seed", 0))
        LlamaForCausalLM(LlamaConfig(**create["config"])).save_pretrained(create["dir"])
    if "model" in job:
        directory = job["model"]
        if "tokenize" in job:
            tokenizer = AutoTokenizer.from_pretrained(directory)
            ids = [tokenizer(text)["input_ids"] for text in job["tokenize"]]
            result["token_ids"] = ids
            result["decoded"] = [tokenizer.decode(row) for row in ids]
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
        model.generation_config.eos_token_id = None  # generate exactly max_new_tokens
        with torch.no_grad():
            if "logits" in job:
                ids = torch.tensor(job["logits"]["ids"])
                mask = torch.tensor(job["logits"]["mask"])
                result["logits"] = model(input_ids=ids, attention_mask=mask).logits.tolist()
            if "generate" in job:
                settings = job["generate"]
                result["generated"] = [
                    model.generate(
                        torch.tensor([prompt]),
                        attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                        max_new_tokens=settings["max_new_tokens"],
                        do_sample=False,
                    )[0, len(prompt) :].tolist()
                    for prompt in settings["ids"]
                ]
            if "time_generate" in job:
                result["timing"] = time_generate(model, directory, job["time_generate"])
    Path(result_path).write_text(json.dumps(result))


def time_generate(model, directory: str, settings: dict) -> dict:
    """Wall-clock seconds of `generate` over settings["ids"] (prompts, in the order given) in
    batches of settings["batch_size"], left-padded with the model's pad id: sampled at
    "temperature" / "top_p" / "top_k" (0: off) from torch seed "seed", or greedy at temperature
    0; rows end at EOS unless "eos" is false, and at any of "stop_strings" (transformers'
    StopStringCriteria); a batch ends when all its rows have, or at "max_new_tokens". One short
    untimed batch warms up first. The model runs on "device" (default cpu) in "dtype" (default
    float32). Returns the seconds (and CPU seconds, all threads), per batch
    too, and each row's new ids (up to its end: the padding after a finished row is dropped)."""
    tokenizer = AutoTokenizer.from_pretrained(directory)
    device = torch.device(settings.get("device", "cpu"))
    model = model.to(device=device, dtype=getattr(torch, settings.get("dtype", "float32")))
    model.generation_config.max_length = None  # max_new_tokens decides
    pad = model.config.pad_token_id
    temperature = settings.get("temperature", 0.0)
    options = {"do_sample": False} if temperature == 0 else {
        "do_sample": True, "temperature": temperature, "top_p": settings.get("top_p", 1.0),
        "top_k": settings.get("top_k", 0),
    }  # fmt: skip
    if settings.get("stop_strings"):
        options |= {"stop_strings": settings["stop_strings"], "tokenizer": tokenizer}
    eos = model.config.eos_token_id if settings.get("eos", True) else None

    def run(rows: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for index, row in enumerate(rows):
            ids[index, width - len(row) :] = torch.tensor(row)
            mask[index, width - len(row) :] = 1
        output = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                max_new_tokens=max_new_tokens, eos_token_id=eos,
                                pad_token_id=pad, **options)  # fmt: skip
        new = output[:, width:].tolist()
        return [_unpadded(row, pad) for row in new]

    torch.manual_seed(settings.get("seed", 0))
    rows, size = settings["ids"], settings["batch_size"]
    run(rows[:size], min(8, settings["max_new_tokens"]))  # warm-up
    generated, batch_seconds = [], []
    start, cpu_start = time.perf_counter(), time.process_time()
    for first in range(0, len(rows), size):
        batch_start = time.perf_counter()
        generated.extend(run(rows[first : first + size], settings["max_new_tokens"]))
        batch_seconds.append(time.perf_counter() - batch_start)
    return {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu_start,
        "batch_seconds": batch_seconds,
        "generated": generated,
        "threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }


def _unpadded(row: list[int], pad: int) -> list[int]:
    """A row's new ids without the padding generate appends once the row has finished."""
    end = len(row)
    while end and row[end - 1] == pad:
        end -= 1
    return row[:end]


if __name__ == "__main__":
    main(*sys.argv[1:])
