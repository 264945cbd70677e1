//! The usage text of `passk` and its per-command parts.

/// The whole usage text (`passk --help`).
pub(crate) const USAGE: &str = "\
passk: the pass@k interference suite's compute binary

USAGE:  (`passk <command> --help` shows one command; `passk --version`)
  passk run <experiment.toml>... [--results DIR] [--quiet] [--prune] [--cache DIR] [--device D]
            [--shard I/N] [--cell HASH[,HASH...]] [--wait] [--reuse DIR] [--strict]
            [--on-corrupt rerun|stop] [--force]
      Run every cell of the experiments whose results are missing (resuming interrupted ones
      from their checkpoints), then rewrite the manifest. A cell is done only when its
      completion record (complete.json: sha256 of each file, its config hash, its warm start)
      verifies; one that fails is reported, moved aside to
      results/<experiment>/.quarantine/<hash>-<n> (never deleted) and rerun, or with
      --on-corrupt stop the run stops before running anything. A cell another process is running
      (it holds results/<experiment>/.lock-<hash>) is skipped; the run then ends with exit
      status 3 (incomplete): rerun once that process has finished.
      --prune deletes cell directories the experiment no longer lists.
      Each new cell's record names the code that computed it: its tier's code fingerprint, the
      sha256 of the sources that determine its numbers (crates/passk-cli/build.rs lists them;
      test files excluded). A done cell with another fingerprint is KEPT with a warning (its
      numbers may be stale; `passk status` lists it); one with none (made before fingerprints,
      or sealed) is kept as of unknown code. --force reruns both kinds (cells this build
      made are never rerun); with --reuse it copies only cells of this build's code.
      --cache DIR holds reusable SFT warm starts (default target/passk-cache). A cached warm
      start is checked (sha256 and config against its sidecar sft-<hash>.json, finite
      weights); one that fails is retrained with a warning, or is an error with --strict.
      For tiny experiments the committed warm starts in <results>/warm-starts/ that the cache
      lacks are copied into it first, when they match <results>/MANIFEST.
      --reuse DIR copies, instead of running, every cell that a results directory DIR already
      holds complete under the same configuration hash (in any of its experiments).
      --shard I/N runs only every N-th cell in matrix order (keys sorted, the last varying
      fastest), starting at the I-th, so N processes (say one per core, each with
      RAYON_NUM_THREADS=1) share a matrix; with `seed` the last key they start on different
      warm starts. Run `passk manifest` after the last shard ends.
      --cell HASH runs only the named cells (hashes as the `list` command prints them; repeat it or
      separate them by commas) and leaves MANIFEST and ENVIRONMENT.json to a later `passk run`
      or `passk manifest`: what each task of a Slurm job array runs (`passk slurm`).
      --wait waits for a cell another process is running instead of skipping it, then finds it
      done, or resumes it from its last checkpoint if that process died.
      SIGTERM or SIGINT: the write in progress (a file, a checkpoint, a finished cell's record)
      is completed, then passk exits with status 143 (130 for SIGINT); the next run resumes
      the cell from its last checkpoint.
      --device cpu|cuda|auto for the trained tiers (default cpu; cuda needs a build with
      `--features cuda`).
  passk slurm <experiment.toml>... [--results DIR] [--cache DIR] [--figures DIR] [--device D]
              [--partition P] [--account A] [--time T] [--cpus N] [--mem M] [--gpus N]
              [--max-concurrent N] [--cells-per-task N] [--sbatch-extra FILE] [--logs DIR]
              [--out DIR] [--job-name NAME] [--dry-run]
      Write a Slurm job array with one task per cell not yet done (--cells-per-task N groups
      N cells of one experiment), each running `passk run --cell HASH --wait`, and a final
      job (--dependency=afterok) that checks every cell is done, writes ENVIRONMENT.json and
      MANIFEST and regenerates the figures; then submit both with sbatch (not with --dry-run).
      The scripts, tasks.txt, submit.sh and a copy of this binary go to --out (default
      target/passk-slurm/<job name>-<unix time>/, printed); logs to --logs (default its
      logs/). Results, cache and that folder must be on a filesystem every node sees.
      --cpus sets --cpus-per-task and the threads of each task (default 1); --gpus N adds
      --gres=gpu:N and runs the cells with --device cuda (--device cuda alone asks for one);
      --max-concurrent N runs at most N tasks at once (--array=...%N); --sbatch-extra FILE
      adds its #SBATCH lines to both scripts. Tasks are --requeue: one stopped by SIGTERM
      resumes from its last checkpoint when it runs again.
  passk warm-starts <experiment.toml>... [--cache DIR] [--shard I/N] [--curve S1,S2,...]
                    [--strict]
      Train (or load from the cache) the SFT warm starts of tiny experiments and print each
      one's held-out pass@1 per family (the numbers its cells record at RL step 0), then the
      mean and spread over seeds: the profile a control is matched on before RL runs.
      --shard deals warm starts sharing a stage 1 to one process. --curve follows stage 1
      (reliable tag) of each seed and profiles it after each listed step count instead; the
      cache is not touched.
  passk list <experiment.toml>... [--results DIR]
      Print each cell's hash, status (done/missing/corrupt) and matrix coordinates.
  passk status <experiment.toml>... [--results DIR]
      Print per experiment its counts, then each cell's hash, status and matrix coordinates:
      complete (done by this build's code), stale-code (done by other code: the sources of
      its tier changed since; `passk run --force` reruns it), unknown-code (done, but its
      record names no code: made before fingerprints, or sealed), missing, corrupt.
  passk experiments [DIR]
      Print the experiment files in DIR (default experiments/) that `reproduce all` runs.
  passk report [--results DIR] [--figures DIR] [--per-cell DIR] [--force]
      Regenerate every figure and table under figures/ from results/ only, and refill the
      generated blocks (`<!-- generated: PATH -->`) of the README.md beside figures/.
      --per-cell DIR also writes each probed cell's own probe figures (inner products by probe
      step, agreement, Gram heatmap) into DIR/<experiment>/, named by cell hash.
      It refuses a --figures folder holding files it did not write; --force replaces it anyway.
  passk manifest [--results DIR]
      Rewrite results/MANIFEST (sha256 and size of every result file).
  passk verify [--results DIR] [--figures DIR]
      Fail when a result file differs from MANIFEST, a cell from its completion record,
      figures/ from a fresh regeneration, or a generated README block from its source.
  passk seal [--results DIR] [--cache DIR]...
      Give each cell without a completion record one, only when all its files match MANIFEST
      and its cell.json hashes to its name, and add the records to MANIFEST. Tiny cells record
      their warm start's sha256 from the first --cache DIR (repeatable; default
      target/passk-cache, then results/warm-starts) that holds it.
  passk check [--claims FILE] [--results DIR] [--baseline DIR] [--strict]
      Evaluate the claims (default experiments/claims.toml) and print a verdict table (the
      estimate with its 95% CI, the statistic the threshold tests, the verdict); exit 1 when
      any claim fails. Claims marked `baseline = true` read the committed results in
      --baseline (default results), the others --results. A claim whose experiment is not
      under its directory (on a fresh clone: the smoke claims, which read the gate's fresh
      cells) is NOT EVALUATED, says how to get its cells, and does not fail the check;
      --strict makes it fail (`cargo xtask check` passes --strict with the gate's cells).
  passk compare <experiment.toml> --objective SPEC... [--results DIR] [--out DIR] [--cache DIR]
                [--strict] [--force]
      Run objective SPEC (repeat --objective for several) on the cells of a tiny experiment
      (its q, seeds and cached warm starts, the cache first seeded from the committed ones in
      --results/warm-starts/ as for run; cells already committed under --results with the
      same configuration are copied, not rerun) into --out (default target/passk-compare),
      then print and write (out/compare.{csv,md,tex}, out/compare_tradeoff.{svg,png}) its
      changes of pass@1 and pass@k and end-of-training probe cosine beside the committed
      baseline in --results. Copied or cached cells computed by other code (another code
      fingerprint; see `run`) are kept with a warning; --force reruns them and those whose
      code is unknown, which every committed cell from before fingerprints is: use it after
      editing an objective's code under the same name. Add an objective: one file in crates/passk-core/src/objective/
      and one line in its `registry!`.
  passk gate [--claims FILE]
      Print the experiment files the CI gate recomputes before checking the claims.
  passk lm-shape <model.gguf> <DIR>
      Write the GGUF model's config.json and tokenizer.json (no weights) into DIR: with
      `lm-random`, a model of the same shape where the weights cannot be copied.
  passk lm-random <DIR> [SEED]
      Write DIR/model.safetensors: seeded random f32 weights (default seed 0) of the shape in
      DIR/config.json. DIR is then a model folder (`model = { dir = ... }` in an lm cell).
  passk lm-bench <DIR> [--device cpu|cuda] [--dtype f32,bf16] [--shape P,S,T] [--reps N]
      Time the model in DIR: batched sampling of S samples for each of P prompts, T new tokens
      each (default 16,16,24, as one RL step of experiments/lm.toml), and the log-probability
      forward + backward of that batch with the last 4 blocks trainable; prints tokens/s and
      seconds (median of N runs, default 3, after one warm-up) for each dtype (default f32 on
      the CPU, f32 and bf16 on CUDA).

Defaults: --results results, --figures figures.
";

/// The part of the usage text that describes `passk <command>`, or `None` for an unknown
/// command.
pub(crate) fn usage_of(command: &str) -> Option<String> {
    let head = format!("  passk {command}");
    let mut lines = USAGE.lines().skip_while(|l| {
        !(l.starts_with(&head) && l[head.len()..].chars().next().is_none_or(|c| c == ' '))
    });
    let first = lines.next()?;
    let mut block = format!("{}\n", first.trim_start());
    let indented = |l: &&str| l.is_empty() || (l.starts_with(' ') && !l.starts_with("  passk "));
    for line in lines.take_while(indented) {
        block.push_str(line.strip_prefix("  ").unwrap_or(line));
        block.push('\n');
    }
    Some(block.trim_end().to_string() + "\n")
}
