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
RESULT.json holds "token_ids", "decoded", "logits" and "generated" for the steps it ran.
"""

import json
import sys
from pathlib import Path

import torch
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
    Path(result_path).write_text(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:])
