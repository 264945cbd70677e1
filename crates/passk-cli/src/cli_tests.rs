//! Tests of `crate::cli`: the declaration is consistent, every command line the project's
//! scripts and xtask write still parses, and a flag a command does not take is refused.

use clap::error::ErrorKind;
use clap::CommandFactory;

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("passk").chain(args.iter().copied()))
}

fn ok(args: &[&str]) -> Command {
    parse(args)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .command
}

fn refused(args: &[&str]) -> String {
    let e = parse(args).expect_err(&format!("{args:?} parses"));
    assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
    e.to_string()
}

#[test]
fn the_declaration_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn every_command_has_help_and_the_binary_its_version() {
    let cmd = Cli::command();
    let names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
    assert_eq!(names.len(), 18, "{names:?}");
    for name in names {
        for flag in ["--help", "-h"] {
            let e = parse(&[name, flag]).expect_err(name);
            assert_eq!(
                (e.kind(), e.exit_code()),
                (ErrorKind::DisplayHelp, 0),
                "{name}"
            );
            let text = e.to_string();
            assert!(text.contains(&format!("Usage: passk {name}")), "{text}");
        }
        let e = parse(&["help", name]).expect_err(name);
        assert_eq!(e.kind(), ErrorKind::DisplayHelp, "help {name}");
        refused(&[name, "--no-such-flag"]);
    }
    let e = parse(&["--version"]).unwrap_err();
    assert_eq!((e.kind(), e.exit_code()), (ErrorKind::DisplayVersion, 0));
    assert_eq!(
        e.to_string(),
        format!("passk {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// Each command's synopsis (`override_usage`, kept from the hand-written usage text) names
/// exactly the flags the command takes.
#[test]
fn each_synopsis_names_exactly_the_command_s_flags() {
    let mut cmd = Cli::command();
    cmd.build();
    for sub in cmd.get_subcommands() {
        let usage = sub.clone().render_usage().to_string();
        let head = format!("Usage: passk {} ", sub.get_name());
        assert!(usage.starts_with(&head), "{usage}");
        let mut in_usage: Vec<String> = usage
            .split(|c: char| c.is_whitespace() || "[]".contains(c))
            .filter(|w| w.starts_with("--"))
            .map(String::from)
            .collect();
        let mut taken: Vec<String> = sub
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| *l != "help")
            .map(|l| format!("--{l}"))
            .collect();
        in_usage.sort();
        in_usage.dedup();
        taken.sort();
        assert_eq!(in_usage, taken, "{}: {usage}", sub.get_name());
        for arg in sub.get_arguments().filter(|a| a.get_id() != "help") {
            assert!(
                arg.get_help().is_some(),
                "{} {}: no help",
                sub.get_name(),
                arg.get_id()
            );
        }
    }
}

/// The command lines of xtask, .ci, scripts/gpu-check.sh, tests/*.sh, the scripts `passk
/// slurm` writes, the README and the docs.
#[test]
fn the_project_s_own_command_lines_parse() {
    for line in [
        "gate",
        "gate --json",
        "gate --claims c.toml --json",
        "experiments experiments --json",
        "check --claims c.toml --results r --strict --experiment smoke --json",
        "check --results r --strict --json",
        "warm-cache --cache target/x/cache --committed results/warm-starts --seed --json",
        "warm-cache --cache c --json",
        "manifest --results target/x",
        "manifest",
        "run a.toml b.toml --shard 1/2 --results r --cache c --quiet --strict",
        "run a.toml --shard 2/2 --results r --cache c --reuse target/x --quiet",
        "run a.toml --device cuda",
        "run a.toml --results r --cache c --quiet --on-corrupt stop",
        "run a.toml --cell 0123abcd,4567ef89 --wait --results r --cache c --device cpu",
        "run a.toml --device cuda --results r --cache c --quiet",
        "run experiments/tiny.toml --shard 1/2",
        "run a.toml --results r --cache c --device auto",
        "check --claims c.toml --results r --strict",
        "check --results r --strict",
        "check",
        "report",
        "report --results r --figures f --quiet",
        "report --results r --figures f",
        "verify",
        "verify --results r --figures f",
        "verify --against target/passk-check",
        "experiments experiments",
        "compare e.toml --objective a:k=4 --objective b --force --device cpu",
        "compare e.toml --objective pkpo_loo_minus_one:k=2,x=1 --out o",
        "compare e.toml --objective a --shard 2/2 --quiet",
        "slurm a.toml --results r --cache c --figures f --cells-per-task 12 --time 10 --out o",
        "slurm a.toml --account mylab --cpus 1 --time 02:00:00 --gpus 1 --dry-run",
        "slurm a.toml --device cuda --max-concurrent 1 --sbatch-extra x --logs l --job-name j",
        "slurm a.toml --partition gpu --mem 4G",
        "list a.toml --results r",
        "status a.toml",
        "warm-starts e.toml",
        "warm-starts e.toml --curve 500,550,600",
        "warm-starts e.toml --cache c --shard 1/3 --strict",
        "seal --results r --cache a --cache b",
        "lm-shape m.gguf d",
        "lm-random d 0",
        "lm-random d",
        "lm-bench d --device cuda --dtype f32,bf16",
        "lm-bench d --device cpu --dtype f32,bf16 --shape 2,2,4 --reps 1",
    ] {
        ok(&line.split(' ').collect::<Vec<_>>());
    }
}

#[test]
fn a_flag_another_command_takes_is_refused() {
    for line in [
        "report --shard 1/2",
        "check --figures f",
        "verify --quiet",
        "list a.toml --cache c",
        "gate --results r",
        "manifest --figures f",
        "run a.toml --figures f",
        "experiments --results r",
        "lm-random d --device cpu",
        "slurm a.toml --quiet",
    ] {
        let e = refused(&line.split(' ').collect::<Vec<_>>());
        assert!(e.contains("unexpected argument"), "{line}: {e}");
    }
    // Positional arguments where a command takes none, or more than it takes.
    for line in [
        "check claims.toml",
        "seal x.toml",
        "compare a.toml b.toml --objective x",
    ] {
        refused(&line.split(' ').collect::<Vec<_>>());
    }
    let e = refused(&["check", "experiments/claims.toml"]);
    assert!(e.contains("--claims"), "the synopsis names it: {e}");
}

#[test]
fn values_are_checked_before_anything_runs() {
    for (line, says) in [
        ("run a.toml --shard 3/2", "I/N"),
        ("run a.toml --shard x", "I/N"),
        ("run a.toml --cell not-a-hash", "passk list"),
        ("run a.toml --cell ab,", "passk list"),
        ("run a.toml --device tpu", "cpu|cuda|auto"),
        ("run a.toml --on-corrupt ignore", "rerun"),
        ("run", "experiment.toml"),
        ("warm-starts e.toml --curve 500,0", "positive"),
        ("compare e.toml", "--objective"),
        ("slurm a.toml --cpus 0", "positive"),
        ("slurm a.toml --partition a'b", "one word"),
        ("slurm a.toml --time", "a value is required"),
        ("lm-random d x", "SEED"),
    ] {
        let e = refused(&line.split(' ').collect::<Vec<_>>());
        assert!(e.contains(says), "{line}: {e}");
    }
}

#[test]
fn values_and_defaults_are_as_before() {
    let Command::Run(run) = ok(&["run", "a.toml", "--cell", "AB,cd", "--cell", " ef"]) else {
        panic!()
    };
    assert_eq!(
        run.cells,
        ["ab", "cd", "ef"],
        "repeated and comma-separated"
    );
    assert_eq!(run.results.results, PathBuf::from("results"));
    assert_eq!(run.cache.cache, PathBuf::from("target/passk-cache"));
    assert_eq!(run.device.device, passk_policy::DeviceChoice::Cpu);
    assert_eq!((run.shard, run.reuse, run.force), (None, None, false));
    // A flag given twice takes its last value, as before.
    let Command::Run(run) = ok(&[
        "run",
        "a.toml",
        "--results",
        "x",
        "--results",
        "y",
        "--quiet",
        "--quiet",
    ]) else {
        panic!()
    };
    assert_eq!(run.results.results, PathBuf::from("y"));
    let Command::Run(run) = ok(&["run", "a.toml", "--shard", "2/3", "--device", "CUDA"]) else {
        panic!()
    };
    assert_eq!(run.shard, Some((2, 3)));
    assert_eq!(run.device.device, passk_policy::DeviceChoice::Cuda);
    let Command::WarmStarts(w) = ok(&["warm-starts", "e.toml", "--curve", "500, 600"]) else {
        panic!()
    };
    assert_eq!(w.curve, Some(vec![500, 600]));
    let Command::Seal(seal) = ok(&["seal"]) else {
        panic!()
    };
    assert!(
        seal.caches.is_empty(),
        "seal's default caches are chosen when it runs"
    );
    let Command::Seal(seal) = ok(&["seal", "--cache", "a", "--cache", "b"]) else {
        panic!()
    };
    assert_eq!(seal.caches, [PathBuf::from("a"), PathBuf::from("b")]);
    let Command::Check(check) = ok(&["check"]) else {
        panic!()
    };
    assert_eq!(
        check.claims.claims,
        PathBuf::from("experiments/claims.toml")
    );
    assert_eq!(check.baseline, PathBuf::from("results"));
    let Command::Experiments(e) = ok(&["experiments"]) else {
        panic!()
    };
    assert_eq!(e.dir, PathBuf::from("experiments"));
    let Command::Compare(c) = ok(&["compare", "e.toml", "--objective", "a,b"]) else {
        panic!()
    };
    assert_eq!(c.objectives, ["a,b"], "an objective spec keeps its commas");
    assert_eq!(c.out, PathBuf::from("target/passk-compare"));
    let Command::LmRandom(r) = ok(&["lm-random", "d"]) else {
        panic!()
    };
    assert_eq!(r.seed, 0);
    let Command::LmBench(b) = ok(&["lm-bench", "d"]) else {
        panic!()
    };
    assert_eq!(
        (b.shape.prompts, b.shape.samples, b.shape.new_tokens),
        (16, 16, 24)
    );
    assert_eq!((b.reps, b.dtype), (3, None));
    let Command::Slurm(s) = ok(&["slurm", "a.toml", "--device", "GPU"]) else {
        panic!()
    };
    assert_eq!(
        s.device.as_deref(),
        Some("gpu"),
        "kept as written, lower-cased"
    );
    assert_eq!(
        SlurmOptions { device: None, ..s },
        SlurmOptions {
            experiments: vec![PathBuf::from("a.toml")],
            ..SlurmOptions::default()
        }
    );
}
