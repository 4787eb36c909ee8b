"""Every bad input a user can give ends in one clear line: the documented exit code, a message that
names the offending option or file, no traceback, and nothing already written changed.

The table is the test: to cover a new command or option, add a row. Placeholders in the arguments:
{run} a finished run folder, {sweep} a sweep folder holding a plan, {tmp} a scratch folder, {new}
a folder that must still not exist afterwards, {grid:NAME} a grid file from GRIDS, {table:NAME} a
file from TABLES, {fifo} a named pipe.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmhist.cli.main import app

runner = CliRunner()
CORES = os.cpu_count() or 1


@dataclass
class Case:
    args: str  # the command line after `llmhist`, split on spaces (placeholders as above)
    says: tuple[str, ...]  # fragments the message must hold (the option or file, and what is wrong)
    code: int = 2


TINY = "--size nano --ctx 32 --batch 8 --data markov:tokens=20000 --out {new}"
GRIDS = {
    "bad_key": '[defaults]\nctx = 32\n[[run]]\narch = "llama"\nsize = "nano"\ntokens = 1e5\nlerning_rate = 1\n',
    "bad_default": '[defaults]\nctxx = 32\n[[run]]\narch = "llama"\nsize = "nano"\ntokens = 1e5\n',
    "bad_table": '[default]\nctx = 32\n[[run]]\narch = "llama"\nsize = "nano"\ntokens = 1e5\n',
    "neg_tokens": '[[run]]\narch = "llama"\nsize = "nano"\ntokens = -5\n',
    "linear": '[defaults]\nschedule = "linear"\n[[run]]\narch = "llama"\nsize = "nano"\ntokens = 1e5\n',
    "threads": '[[run]]\narch = "llama"\nsize = "nano"\ntokens = 1e5\nthreads = -1\n',
    "escape": '[[run]]\nname = "../../x"\narch = "llama"\nsize = "nano"\ntokens = 1e5\n',
    "slash": '[[run]]\nname = "a/b"\narch = "llama"\nsize = "nano"\ntokens = 1e5\n',
    "both": '[[run]]\narch = "llama"\nsize = "nano"\ntokens = 1e5\nflops = 1e12\n',
    "string": '[[run]]\narch = "llama"\nsize = "nano"\ntokens = "lots"\n',
    "no_arch": '[[run]]\nsize = "nano"\ntokens = 1e5\n',
    "not_toml": "[[run]\n",
    "no_runs": "[defaults]\nctx = 32\n",
    "shape": '[[run]]\narch = "gpt2"\nd_model = 96\nn_layers = 2\nn_heads = 5\ntokens = 1e5\n',
    "repeat": '[[run]]\nname = "a"\narch = "llama"\nsize = "nano"\ntokens = 1e5\n'
              '[[run]]\nname = "a"\narch = "llama"\nsize = "nano"\ntokens = 2e5\n',
    "nan": '[[run]]\narch = "llama"\nsize = "nano"\ntokens = 1e5\nlr = nan\n',
}

# inputs to `fit`, `recommend --fit` and `compare --fit` (name -> file name, text)
TABLES = {
    "small": ("small.csv", "N,D,loss\n1e6,2e7,3.1\n2e6,4e7,2.9\n4e6,8e7,2.8\n"),
    "one": ("one.csv", "N,D,loss\n1e6,2e7,3.1\n"),
    "cols": ("cols.csv", "x,y\n1,2\n"),
    "negative": ("negative.csv", "N,D,loss\n1e6,2e7,3.1\n-1,2e7,3.0\n"),
    "broken": ("broken.json", '{"law": "chinchilla"'),
    "not_a_law": ("not_a_law.json", '{"law": "chinchilla", "params": {"E": 1.7}}'),
    "header_only": ("header_only.csv", "N,D,loss\n"),
    "abc": ("abc.csv", "N,D,loss\n1e6,2e7,3.1\n2e6,4e7,abc\n"),
    "falling": ("falling.json", '{"law": "kaplan", "params": {"alpha_N": 0.07, "alpha_D": 0.09, "N_c": 8e13, '
                                '"D_c": 5e13, "n_opt_coef": 1e9, "a": -2.04}}'),
    "garbage": ("garbage.bin", b"\x80\x81\xfe\xff not utf-8"),  # a binary file given as a fit
}
FIT = "--out {new} --bootstrap 0"

CASES: dict[str, Case] = {
    # ---- train: every value outside its range, named
    "train lr 0": Case(f"train --lr 0 {TINY}", ("--lr 0", "> 0")),
    "train lr nan": Case(f"train --lr nan {TINY}", ("--lr nan", "finite")),
    "train lr -1": Case(f"train --lr -1 {TINY}", ("--lr -1",)),
    "train warmup -1": Case(f"train --warmup -1 {TINY}", ("--warmup -1", ">= 0")),
    "train warmup nan": Case(f"train --warmup nan {TINY}", ("--warmup nan",)),
    "train warmup 5": Case(f"train --warmup 5 {TINY}", ("--warmup 5", "< 1")),
    "train decay 3": Case(f"train --decay 3 {TINY}", ("--decay 3", "<= 1")),
    "train decay 0": Case(f"train --decay 0 {TINY}", ("--decay 0",)),
    "train eval-every 0": Case(f"train --eval-every 0 {TINY}", ("--eval-every 0", ">= 1")),
    "train eval-batches 0": Case(f"train --eval-batches 0 {TINY}", ("--eval-batches 0",)),
    "train micro-batch 0": Case(f"train --micro-batch 0 {TINY}", ("--micro-batch 0",)),
    "train micro-batch -1": Case(f"train --micro-batch -1 {TINY}", ("--micro-batch -1",)),
    "train micro-batch 3": Case(f"train --micro-batch 16 {TINY}", ("--micro-batch 16", "--batch 8")),
    "train batch 0": Case("train --lr 1e-3 --batch 0 --size nano --out {new}", ("--batch 0",)),
    "train ctx 0": Case("train --ctx 0 --size nano --out {new}", ("--ctx 0", ">= 8")),
    "train tokens 0": Case(f"train --tokens 0 {TINY}", ("--tokens 0",)),
    "train tokens -5": Case(f"train --tokens -5 {TINY}", ("--tokens -5",)),
    "train tokens nan": Case(f"train --tokens nan {TINY}", ("--tokens nan",)),
    "train tokens inf": Case(f"train --tokens inf {TINY}", ("--tokens inf",)),
    "train tokens 1e30": Case(f"train --tokens 1e30 {TINY}", ("--tokens 1e+30", "1e+15")),
    "train tokens word": Case(f"train --tokens many {TINY}", ("--tokens", "valid number")),
    "train flops -1": Case(f"train --flops -1 {TINY}", ("--flops -1",)),
    "train flops inf": Case(f"train --flops inf {TINY}", ("--flops inf",)),
    "train tokens+flops": Case(f"train --tokens 1000 --flops 1e9 {TINY}", ("--tokens", "--flops", "not both")),
    "train peak-flops -1": Case(f"train --peak-flops -1 {TINY}", ("--peak-flops -1",)),
    "train threads 0": Case(f"train --threads 0 {TINY}", ("--threads 0",)),
    "train threads -2": Case(f"train --threads -2 {TINY}", ("--threads -2",)),
    "train threads 5000": Case(f"train --threads 5000 {TINY}", ("--threads 5000", f"{CORES} cores")),
    "train threads 100000": Case(f"train --threads 100000 {TINY}", ("--threads 100000", f"{CORES} cores")),
    "train seed -1": Case(f"train --seed -1 {TINY}", ("--seed -1",)),
    "train d-model 0": Case("train --d-model 0 --n-layers 2 --n-heads 2 --out {new}", ("--d-model 0", ">= 1")),
    "train n-layers 0": Case("train --d-model 64 --n-layers 0 --n-heads 2 --out {new}", ("--n-layers 0",)),
    "train n-heads -1": Case("train --d-model 64 --n-layers 2 --n-heads -1 --out {new}", ("--n-heads -1",)),
    "train half shape": Case("train --d-model 64 --out {new}", ("--d-model", "--n-layers", "needs all of")),
    "train heads divide": Case("train --arch gpt2 --d-model 96 --n-layers 2 --n-heads 5 --out {new}", ("divisible",)),
    "train size of other family": Case("train --arch gpt2 --size llama-7b --out {new}", ("--size llama-7b", "llama")),
    "train size unknown": Case("train --size huge --out {new}", ("huge",)),
    "train arch unknown": Case("train --arch gpt5 --out {new}", ("--arch", "gpt5")),
    "train arch unpublished": Case("train --arch gpt4 --out {new}", ("never published",)),
    "train schedule": Case(f"train --schedule linear {TINY}", ("--schedule 'linear'", "cosine")),
    "train device meta": Case(f"train --device meta {TINY}", ("--device 'meta'",)),
    "train device cuda:7": Case(f"train --device cuda:7 {TINY}", ("--device cuda:7",)),
    "train device tpu": Case(f"train --device tpu {TINY}", ("--device 'tpu'",)),
    "train token-dtype": Case(f"train --token-dtype int8 {TINY}", ("--token-dtype 'int8'",)),
    "train tokenizer": Case(f"train --tokenizer words {TINY}", ("--tokenizer 'words'",)),
    "train tokenizer bpe10": Case(f"train --tokenizer bpe10 {TINY}", ("--tokenizer bpe10", "257")),
    "train vocab-size 0": Case(f"train --vocab-size 0 {TINY}", ("--vocab-size 0",)),
    "train branches cosine": Case(f"train --branches 0.5 {TINY}", ("--branches", "--schedule wsd")),
    "train branches 2": Case(f"train --schedule wsd --branches 2 {TINY}", ("--branches '2'", "(0, 1)")),
    "train branches word": Case(f"train --schedule wsd --branches a,b {TINY}", ("--branches 'a,b'",)),
    "train branch in warmup": Case(f"train --schedule wsd --branches 0.01 --warmup 0.5 {TINY}",
                                   ("--branches 0.01", "after the warmup")),
    "train micro-batch 3 of 8": Case(f"train --micro-batch 3 {TINY}", ("--micro-batch 3", "divide", "8")),
    "train ctx over the model's": Case("train --arch gpt2 --size gpt2-small --ctx 2048 --data markov --out {new}",
                                       ("--ctx 2048", "1024")),
    "train data missing": Case("train --data {tmp}/nope --out {new}", ("--data", "nope", "no such file")),
    "train data markup path": Case("train --data {tmp}/[/x]/c.txt --out {new}", ("[/x]/c.txt", "no such file")),
    "train data fifo": Case("train --data {fifo} --out {new}", ("--data", "not a regular file")),
    "train different run": Case("train --size nano --ctx 32 --batch 8 --data markov:tokens=20000 --seed 7 --out {run}",
                                ("different run", "seed")),
    "train folder of other files": Case("train --size nano --out {sweep}", ("other files",)),
    # ---- sweep
    "sweep workers -1": Case("sweep --workers -1 --out {new} --yes", ("--workers -1", f"1 to {CORES}")),
    "sweep workers 0": Case("sweep --workers 0 --out {new} --yes", ("--workers 0",)),
    "sweep workers 100000": Case("sweep --workers 100000 --out {new} --yes", ("--workers 100000",)),
    "sweep threads 0": Case("sweep --threads 0 --out {new} --yes", ("--threads 0",)),
    "sweep workers x threads": Case(f"sweep --workers {CORES} --threads 2 --out {{new}} --yes",
                                    ("--workers", "--threads", "cores")),
    "sweep points 2": Case("sweep --points 2 --out {new} --yes", ("--points 2", "at least 3")),
    "sweep points 0": Case("sweep --points 0 --out {new} --yes", ("--points 0",)),
    "sweep points 400": Case("sweep --points 400 --out {new} --yes", ("--points 400",)),
    "sweep spread 1": Case("sweep --spread 1 --out {new} --yes", ("--spread 1",)),
    "sweep spread nan": Case("sweep --spread nan --out {new} --yes", ("--spread nan",)),
    "sweep budgets 1e30": Case("sweep --budgets 1e30 --out {new} --yes", ("--budgets 1e+30", "too large")),
    "sweep budgets 1e6": Case("sweep --budgets 1e6 --out {new} --yes", ("--budgets 1e+06", "too small")),
    "sweep budgets word": Case("sweep --budgets lots --out {new} --yes", ("--budgets 'lots'",)),
    "sweep budgets -1": Case("sweep --budgets -1e12 --out {new} --yes", ("--budgets -1e+12", "positive")),
    "sweep budgets nan": Case("sweep --budgets nan --out {new} --yes", ("--budgets 'nan'",)),
    "sweep ctx 0 dry": Case("sweep --ctx 0 --dry-run --out {new}", ("--ctx 0",)),
    "sweep batch 0": Case("sweep --batch 0 --out {new} --yes", ("--batch 0",)),
    "sweep seed -1": Case("sweep --seed -1 --out {new} --yes", ("--seed -1",)),
    "sweep data missing": Case("sweep --data {tmp}/nope --out {new} --yes", ("--data", "nope")),
    "sweep arch unknown": Case("sweep --arch lama --out {new} --yes", ("lama",)),
    "sweep launcher": Case("sweep --launcher pbs --out {new} --yes", ("--launcher 'pbs'",)),
    "sweep ladder one size": Case("sweep --sizes 1e5 --out {new} --yes", ("--sizes",)),
    "sweep ladder negative": Case("sweep --sizes -1,2e5 --out {new} --yes", ("--sizes",)),
    "sweep ladder schedule": Case("sweep --sizes 1e5,4e5 --schedule linear --out {new} --yes", ("--schedule 'linear'",)),
    "sweep ladder tpp 0": Case("sweep --sizes 1e5,4e5 --tokens-per-param 0 --out {new} --yes",
                               ("--tokens-per-param",)),
    "sweep grid missing": Case("sweep --grid {tmp}/nope.toml --out {new} --yes", ("--grid", "nope.toml", "no such")),
    "sweep grid folder": Case("sweep --grid {tmp} --out {new} --yes", ("--grid", "a folder")),
    "sweep grid unknown run key": Case("sweep --grid {grid:bad_key} --out {new} --yes", ("bad_key.toml", "lerning_rate")),
    "sweep grid unknown default": Case("sweep --grid {grid:bad_default} --out {new} --yes", ("bad_default.toml", "ctxx")),
    "sweep grid unknown table": Case("sweep --grid {grid:bad_table} --out {new} --yes", ("bad_table.toml", "'default'")),
    "sweep grid tokens -5": Case("sweep --grid {grid:neg_tokens} --out {new} --yes", ("neg_tokens.toml", "--tokens -5")),
    "sweep grid schedule": Case("sweep --grid {grid:linear} --out {new} --yes", ("linear.toml", "--schedule 'linear'")),
    "sweep grid threads": Case("sweep --grid {grid:threads} --out {new} --yes", ("threads.toml", "--threads -1")),
    "sweep grid name escapes": Case("sweep --grid {grid:escape} --out {new} --yes", ("escape.toml", "'../../x'")),
    "sweep grid name slash": Case("sweep --grid {grid:slash} --out {new} --yes", ("slash.toml", "'a/b'")),
    "sweep grid tokens+flops": Case("sweep --grid {grid:both} --out {new} --yes", ("both.toml", "tokens or flops")),
    "sweep grid string": Case("sweep --grid {grid:string} --out {new} --yes", ("string.toml", "--tokens 'lots'")),
    "sweep grid no arch": Case("sweep --grid {grid:no_arch} --out {new} --yes", ("no_arch.toml", "arch")),
    "sweep grid not toml": Case("sweep --grid {grid:not_toml} --out {new} --yes", ("not_toml.toml", "not valid TOML")),
    "sweep grid no runs": Case("sweep --grid {grid:no_runs} --out {new} --yes", ("no_runs.toml", "[[run]]")),
    "sweep grid shape": Case("sweep --grid {grid:shape} --out {new} --yes", ("shape.toml", "divisible")),
    "sweep grid names repeat": Case("sweep --grid {grid:repeat} --out {new} --yes", ("repeat.toml", "repeat")),
    "sweep grid nan": Case("sweep --grid {grid:nan} --out {new} --yes", ("nan.toml", "--lr nan")),
    "sweep other plan": Case("sweep --budgets 3e11,1e12,3e12 --points 3 --out {sweep} --yes --workers 1 --threads 1",
                             ("another sweep plan",)),
    "sweep folder of a run": Case("sweep --budgets 1e11 --points 3 --out {run} --yes --workers 1 --threads 1",
                                  ("no plan.json",)),
    "sweep status missing": Case("sweep status {tmp}/nope", ("nope", "no such folder")),  # F15
    "sweep status no plan": Case("sweep status {tmp}", ("no plan.json",)),
    "sweep status corrupt plan": Case("sweep status {corrupt}", ("plan.json", "unreadable")),
    # ---- study: every option checked before any work
    "study plot pdf": Case("study --plot pdf --out {new}", ("--plot 'pdf'",)),
    "study bootstrap -1": Case("study --bootstrap -1 --out {new}", ("--bootstrap -1",)),
    "study budgets word": Case("study --budgets lots --out {new}", ("--budgets 'lots'",)),
    "study budgets 1e6": Case("study --budgets 1e6 --out {new}", ("--budgets 1e+06", "too small")),
    "study flops -1": Case("study --flops -1 --out {new}", ("--flops -1",)),
    "study flops nan": Case("study --flops nan --out {new}", ("--flops nan",)),
    "study points 2": Case("study --points 2 --out {new}", ("--points 2",)),
    "study ctx 0": Case("study --ctx 0 --out {new}", ("--ctx 0",)),
    "study workers -1": Case("study --workers -1 --out {new}", ("--workers -1",)),
    "study data missing": Case("study --data {tmp}/nope --out {new}", ("--data", "nope")),
    "study arch unknown": Case("study --arch lama --out {new}", ("lama",)),
    # ---- export
    "export no run": Case("export {tmp}/nope {new}", ("nope", "not a run folder")),
    "export sweep folder": Case("export {sweep} {new}", ("not a run folder",)),
    "export into a file": Case("export {run} {run}/config.json", ("config.json",)),
    "export into non-empty": Case("export {run} {sweep}", ("not empty",)),
    # ---- bench
    "bench steps 0": Case("bench --steps 0 --no-hf", ("--steps 0",)),
    "bench repeats 0": Case("bench --repeats 0 --no-hf", ("--repeats 0",)),
    "bench ctx 0": Case("bench --ctx 0 --no-hf", ("--ctx 0",)),
    "bench batch 0": Case("bench --batch 0 --no-hf", ("--batch 0",)),
    "bench device meta": Case("bench --device meta --no-hf", ("--device 'meta'",)),
    "bench threads 100000": Case("bench --threads 100000 --no-hf", ("--threads 100000",)),
    "bench d-model 0": Case("bench --d-model 0 --no-hf", ("--d-model 0",)),
    "bench arch unknown": Case("bench --arch gpt5 --no-hf", ("gpt5",)),
    "bench size other family": Case("bench --arch llama --size gpt2-small --no-hf", ("--size gpt2-small",)),
    "bench peak-flops -1": Case("bench --peak-flops -1 --no-hf", ("--peak-flops -1",)),
    "bench t5": Case("bench --arch t5 --no-hf", ("--arch t5", "encoder-decoder", "decoder-only")),
    # ---- fit: every option checked before any point is read, every file problem named
    "fit missing": Case(f"fit {{tmp}}/nope.csv {FIT}", ("nope.csv", "no such file")),
    "fit plot pdf": Case(f"fit {{table:small}} --plot pdf {FIT}", ("--plot 'pdf'", "files, terminal, none")),
    "fit law unknown": Case(f"fit {{table:small}} --law magic {FIT}", ("--law 'magic'", "chinchilla")),
    "fit bootstrap -1": Case("fit {table:small} --bootstrap -1 --out {new}", ("--bootstrap -1",)),
    "fit holdout 0.7": Case(f"fit {{table:small}} --holdout 0.7 {FIT}", ("--holdout 0.7", "[0, 0.5)")),
    "fit min-points 2": Case(f"fit {{table:small}} --min-points 2 {FIT}", ("--min-points 2", "at least 3")),
    "fit window": Case(f"fit {{table:small}} --window 3x {FIT}", ("--window '3x'", "1dec")),
    "fit n-convention": Case(f"fit {{table:small}} --n-convention weird {FIT}", ("--n-convention 'weird'", "total")),
    "fit c-convention": Case(f"fit {{table:small}} --c-convention 7ND {FIT}", ("--c-convention '7ND'", "6ND")),
    "fit loss": Case(f"fit {{table:small}} --loss best {FIT}", ("--loss 'best'", "final")),
    "fit no N column": Case(f"fit {{table:cols}} {FIT}", ("cols.csv", "no column 'N'", "--n-col")),
    "fit n-col absent": Case(f"fit {{table:small}} --n-col P {FIT}", ("small.csv", "no column 'P'", "--n-col")),
    "fit negative N": Case(f"fit {{table:negative}} {FIT}", ("negative.csv", "non-finite N", "-1")),
    "fit one point": Case(f"fit {{table:one}} {FIT}", ("no law could be fitted", "too few points")),
    "fit envelope of a table": Case(f"fit {{table:small}} --law envelope {FIT}", ("--law envelope", "runs folder")),
    "fit folder without runs": Case(f"fit {{tmp}}/grids {FIT}", ("grids", "no finished runs")),
    "fit a sweep not run": Case(f"fit {{sweep}} {FIT}", ("no finished runs",)),
    "fit header only": Case(f"fit {{table:header_only}} {FIT}", ("header_only.csv", "no rows")),
    "fit a word as loss": Case(f"fit {{table:abc}} {FIT}", ("abc.csv", "line 3", "`abc`")),
    "fit out is a file": Case("fit {table:small} --bootstrap 0 --out {run}/config.json",
                              ("--out", "config.json", "a file, not a folder")),
    "fit out below a file": Case("fit {table:small} --bootstrap 0 --out {run}/config.json/fits",
                                 ("config.json", "a file, not a folder")),
    # ---- recommend: one budget, each a positive finite number, laws and fit files named
    "recommend no budget": Case("recommend", ("give a budget", "--flops")),
    "recommend flops -1": Case("recommend --flops -1", ("--flops -1", "positive")),
    "recommend flops nan": Case("recommend --flops nan", ("--flops nan",)),
    "recommend flops word": Case("recommend --flops lots", ("--flops 'lots'", "not a number", "--flops 1e21")),
    "recommend flops power": Case("recommend --flops 10**21", ("--flops '10**21'", "write --flops 1e21")),
    "recommend flops commas": Case("recommend --params 7,000,000,000", ("--params '7,000,000,000'", "write --params 7e9")),
    "recommend two budgets": Case("recommend --flops 1e21 --params 1e9", ("give one budget",)),
    "recommend hours no gpu": Case("recommend --gpu-hours 100", ("--gpu", "--gpu-hours", "h100")),
    "recommend gpu unknown": Case("recommend --gpu-hours 100 --gpu tpu9", ("--gpu 'tpu9'", "h100")),
    "recommend mfu 2": Case("recommend --gpu-hours 100 --gpu h100 --mfu 2", ("--mfu 2", "(0, 1]")),
    "recommend gpu no hours": Case("recommend --gpu h100", ("--gpu h100", "--gpu-hours")),
    "recommend params 0": Case("recommend --params 0", ("--params 0",)),
    "recommend tokens inf": Case("recommend --tokens inf", ("--tokens inf",)),
    "recommend law unknown": Case("recommend --flops 1e21 --law nope", ("--law 'nope'", "hoffmann2022")),
    "recommend inference -5": Case("recommend --flops 1e21 --inference-tokens -5", ("--inference-tokens -5",)),
    "recommend fit missing": Case("recommend --flops 1e21 --fit {tmp}/nope.json", ("nope.json", "fit file")),
    "recommend fit broken": Case("recommend --flops 1e21 --fit {table:broken}", ("broken.json", "fit file")),
    "recommend fit binary": Case("recommend --flops 1e21 --fit {table:garbage}", ("garbage.bin", "fit file")),
    "recommend flops 1e300": Case("recommend --flops 1e300", ("--flops 1e+300", "above 1e+32")),
    "recommend params 1e40": Case("recommend --params 1e40", ("--params 1e+40", "above 1e+32")),
    "recommend fit a table": Case("recommend --flops 1e21 --fit {table:small}", ("small.csv", "fit file")),
    "recommend fit not a law": Case("recommend --flops 1e21 --fit {table:not_a_law}", ("not_a_law.json",)),
    "recommend fit falling optimum": Case("recommend --flops 1e19 --fit {table:falling}",
                                          ("falling.json", "a = -2.04 is not positive")),
    # ---- archs, show, compare
    "archs family unknown": Case("archs --family lama", ("--family 'lama'", "llama")),
    "archs since word": Case("archs --since soon", ("--since", "integer")),
    "show unknown": Case("show gpt5", ("'gpt5'", "did you mean")),
    "show size unknown": Case("show llama --size huge", ("'huge'", "nano")),
    "show half shape": Case("show llama --d-model 64", ("--d-model", "--n-layers", "--n-heads")),
    "show heads divide": Case("show gpt2 --d-model 96 --n-layers 2 --n-heads 5", ("divisible",)),
    "show size of other family": Case("show llama --size gpt2-small", ("--size gpt2-small", "llama")),
    "show d-model 0": Case("show llama --d-model 0 --n-layers 2 --n-heads 2", ("--d-model 0",)),
    "compare one": Case("compare gpt3", ("at least two",)),
    "compare unknown": Case("compare gpt3 gpt5", ("'gpt5'",)),
    "compare unpublished": Case("compare gpt3 gpt4", ("gpt4", "never published")),
    "compare fit missing": Case("compare gpt3 chinchilla --fit {tmp}/nope.json", ("nope.json", "fit file")),
    "compare fit broken": Case("compare gpt3 chinchilla --fit {table:broken}", ("broken.json", "fit file")),
    # ---- show / compare / recommend: the parallel layout (llmhist.archs.parallel)
    "show tp heads": Case("show llama3-70b --tp 3", ("--tp 3", "64 attention heads", "1, 2, 4, 8")),
    "show gpus tp pp": Case("show llama3-70b --gpus 64 --tp 8 --pp 3", ("--gpus 64", "--tp 8 x --pp 3 = 24")),
    "show zero 4": Case("show llama3-70b --zero 4", ("--zero 4", "0-3")),
    "show recompute": Case("show llama3-70b --recompute some", ("--recompute 'some'", "selective")),
    "show pp layers": Case("show llama3-8b --pp 64", ("--pp 64", "32 layers")),
    "show gpu unknown": Case("show llama3-70b --gpu tpu9", ("--gpu 'tpu9'", "h100")),
    "show micro-batch 0": Case("show llama3-70b --micro-batch 0", ("--micro-batch 0", ">= 1")),
    "show gpus -8": Case("show llama3-70b --gpus -8", ("--gpus -8", ">= 1")),
    "show global batch": Case("show llama3-70b --gpus 16 --tp 8 --global-batch 3", ("--global-batch 3", "multiple of 2")),
    "show mfu 1.5": Case("show llama3-70b --gpus 8 --mfu 1.5", ("--mfu 1.5", "(0, 1]")),
    "show seq-parallel ctx": Case("show llama3-70b --tp 8 --seq-parallel --ctx 1001", ("--ctx", "divisible by 8")),
    "show layout unpublished": Case("show gpt4 --gpus 8", ("gpt4", "never published")),
    "compare tp heads": Case("compare gpt3 chinchilla --tp 5", ("--tp 5", "heads")),
    "recommend gpus tp": Case("recommend --flops 1e21 --gpus 10 --tp 4", ("--gpus 10", "--tp 4")),
    "recommend gpus zero": Case("recommend --flops 1e21 --gpus 8 --zero 5", ("--zero 5", "0-3")),
    "recommend gpus gpu": Case("recommend --flops 1e21 --gpus 8 --gpu tpu9", ("--gpu 'tpu9'", "h100")),
    # issue 22: the GQA hint's --n-kv-heads exists and is checked; a folder that is not there
    "train n-kv-heads divide": Case("train --arch llama3 --d-model 48 --n-layers 2 --n-heads 4 --n-kv-heads 3 "
                                    "--out {new}", ("--n-kv-heads 3", "must divide --n-heads 4")),
    "train n-kv-heads with size": Case("train --size nano --n-kv-heads 1 --out {new}",
                                       ("--n-kv-heads 1", "explicit shape")),
    "train one step past the request": Case("train --size nano --tokens 1e5 --ctx 100000 --out {new}",
                                            ("--tokens", "less than one step", "16x the tokens", "--ctx")),
    "sweep out a file": Case("sweep --budgets 3e10,1e11 --points 3 --yes --workers 1 --threads 1 --out "
                             "{table:small}", ("--out", "small.csv", "a file, not a folder")),
    "ablate out a file": Case("ablate gpt2 llama3 --yes --workers 1 --threads 1 --out {table:small}",
                              ("--out", "small.csv", "a file, not a folder")),
    "ablate points 1000": Case("ablate gpt2 llama3 --points 1000 --dry-run", ("--points 1000", "at most 50")),
    "ablate points 40": Case("ablate gpt2 llama3 --points 40 --dry-run", ("--points 40", "distinct shapes",
                                                                            "--spread")),
    "ablate budgets negative": Case("ablate gpt2 llama3 --budgets -3e11 --dry-run", ("--budgets -3e+11",)),
    "sweep isoflop tokens-per-param": Case("sweep --budgets 3e10,1e11 --tokens-per-param 100 --dry-run",
                                           ("--tokens-per-param 100", "isoFLOP", "--sizes")),
}
if sys.platform != "darwin":  # first-hour C3: --device mps off macOS was a traceback
    CASES["train device mps"] = Case(f"train --device mps {TINY}", ("--device mps", "macOS only"))


def _snapshot(*folders: Path) -> dict:
    out = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.is_file() and p.name != ".lock":
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from llmhist.train import sweep as S
    from llmhist.train.config import TrainConfig
    from llmhist.train.loop import train

    tmp = tmp_path_factory.mktemp("bad-input")
    run = tmp / "run"
    train(TrainConfig(arch="llama", size="nano", ctx=32, batch=8, tokens=32 * 8 * 2, data="markov:tokens=20000",
                      out=str(run), threads=1))
    sweep = tmp / "sweep"
    S.prepare(sweep, S.plan_isoflop(["llama"], [1e11, 3e11, 1e12], points=3, ctx=64, batch=32))
    corrupt = tmp / "corrupt"
    corrupt.mkdir()
    (corrupt / "plan.json").write_text('{"kind": "isoflop", "runs": [{"nam')
    grids = tmp / "grids"
    grids.mkdir()
    for name, text in GRIDS.items():
        (grids / f"{name}.toml").write_text(text)
    for name, text in TABLES.values():
        (tmp / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    fifo = tmp / "pipe.txt"
    os.mkfifo(fifo)
    return {"run": run, "sweep": sweep, "corrupt": corrupt, "grids": grids, "fifo": fifo, "tmp": tmp}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_ends_in_one_clear_line(world, name, tmp_path, monkeypatch):
    case = CASES[name]
    new = tmp_path / "new"
    subs = {"run": world["run"], "sweep": world["sweep"], "tmp": world["tmp"], "new": new, "fifo": world["fifo"],
            "corrupt": world["corrupt"]}
    args = []
    for a in case.args.split():
        for g in GRIDS:
            a = a.replace(f"{{grid:{g}}}", str(world["grids"] / f"{g}.toml"))
        for t, (fname, _) in TABLES.items():
            a = a.replace(f"{{table:{t}}}", str(world["tmp"] / fname))
        args.append(a.format(**subs))
    before = _snapshot(world["run"], world["sweep"], world["corrupt"], world["tmp"])
    cwd = tmp_path / "cwd"  # a default output folder (fits/, runs/) would land here
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    r = runner.invoke(app, args)
    out = " ".join(r.output.replace("│", " ").split())  # click's own parse errors come in a box
    assert r.exit_code == case.code, (args, r.output, r.exception)
    assert "Traceback" not in r.output and (r.exception is None or isinstance(r.exception, SystemExit)), r.output
    for frag in case.says:
        assert frag in out, (frag, out)
    assert not new.exists(), "a refused command created its output folder"
    assert not any(cwd.iterdir()), "a refused command wrote into the working folder"
    assert _snapshot(world["run"], world["sweep"], world["corrupt"], world["tmp"]) == before, \
        "a refused command changed files"


def test_the_table_covers_every_command_it_claims():
    cmds = {k.split()[0] for k in CASES}
    assert {"train", "sweep", "study", "export", "bench", "fit", "recommend", "archs", "show", "compare"} <= cmds
    print(f"{len(CASES)} bad inputs in the table")


@pytest.mark.parametrize("err,says,not_says", [
    (OSError(errno.ENOSPC, "No space left on device", "/data/run/metrics.csv"),
     ("no space left on", "/data/run/metrics.csv", "previous state is intact", "free space"), ()),
    (OSError(errno.EROFS, "Read-only file system", "/ro/run/config.json"),
     ("/ro/run/config.json", "read-only"), ("free space",)),
    (PermissionError(errno.EACCES, "Permission denied", "/root/x"), ("/root/x", "Permission denied"), ("free space",)),
])
def test_os_errors_are_one_line_naming_the_file(err, says, not_says):
    import typer

    from llmhist.cli.common import user_errors

    mini = typer.Typer()

    @mini.command()
    def boom():
        with user_errors():
            raise err

    r = runner.invoke(mini, [])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert all(s in out for s in says) and not any(s in out for s in not_says), out


def test_user_text_prints_literally_and_a_bug_keeps_its_traceback():
    import typer

    from llmhist.cli.common import user_errors
    from llmhist.train.config import RunError

    mini = typer.Typer()

    @mini.command()
    def hint(bug: bool = False):
        with user_errors():
            if bug:
                raise KeyError("a bug, not a user error")
            raise RunError("--launcher slurm needs submitit: pip install 'llmhist[slurm]' (see runs/[/x])")

    r = runner.invoke(mini, [])
    assert r.exit_code == 2 and "pip install 'llmhist[slurm]' (see runs/[/x])" in " ".join(r.output.split())
    r = runner.invoke(mini, ["--bug"])
    assert r.exit_code == 1 and isinstance(r.exception, KeyError)  # not dressed up as a user error
