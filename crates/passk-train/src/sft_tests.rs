//! Tests of `sft.rs` (kept in their own file so that file stays under 600 lines).

use super::*;

/// Every parameter of `a` equals `b`'s bit for bit.
fn assert_same_weights(a: &Gpt, b: &Gpt) {
    for ((name, va), (_, vb)) in a.params().iter().zip(b.params()) {
        let flat = |v: &candle_core::Var| {
            v.as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        assert_eq!(flat(va), flat(&vb), "{name}");
    }
}

#[test]
fn sft_lowers_its_loss() {
    let mut cfg = TinyCellConfig::nano_smoke(1.0, "pass1_rloo");
    cfg.sft.stage1_steps = 30;
    cfg.sft.stage2_steps = 0;
    cfg.sft.batch = 32;
    let (_, log) = train_sft(&cfg, &Device::Cpu, &mut |_| {}).unwrap();
    let first: f64 = log[..5].iter().map(|r| r.loss).sum::<f64>() / 5.0;
    let last: f64 = log[25..].iter().map(|r| r.loss).sum::<f64>() / 5.0;
    assert!(last < 0.7 * first, "loss {first} -> {last}");
}

#[test]
fn warm_start_is_cached_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = TinyCellConfig::nano_smoke(0.75, "pass1_rloo");
    let mut phases = Vec::new();
    let a = warm_start_with(&cfg, dir.path(), &Device::Cpu, &mut |p| {
        phases.push(p.phase)
    })
    .unwrap();
    assert!(!a.reused);
    assert!(phases.contains(&Phase::Sft1) && phases.contains(&Phase::Sft2));
    assert!(a.path.exists() && a.path.with_extension("csv").exists());
    let b = warm_start_with(&cfg, dir.path(), &Device::Cpu, &mut |_| {}).unwrap();
    assert!(b.reused);
    assert_same_weights(&a.model, &b.model);
    // A cell that differs only in RL settings shares the file.
    let mut other = cfg.clone();
    other.rl.objective = "pkpo_loo_minus_one:k=4".into();
    assert_eq!(warm_start_path(&other, dir.path()), a.path);
    // Another q reuses the cached stage 1 and matches training both stages from scratch.
    let mut control = cfg.clone();
    control.mixture.cue_reliability = 1.0;
    assert_eq!(control.sft_stage1_hash(), cfg.sft_stage1_hash());
    let reused = warm_start_with(&control, dir.path(), &Device::Cpu, &mut |p| {
        assert_ne!(p.phase, Phase::Sft1, "stage 1 should come from the cache")
    })
    .unwrap();
    let (fresh, _) = train_sft(&control, &Device::Cpu, &mut |_| {}).unwrap();
    assert_same_weights(&reused.model, &fresh);
    // Training again from scratch gives the same weights (determinism).
    let (again, _) = train_sft(&cfg, &Device::Cpu, &mut |_| {}).unwrap();
    assert_same_weights(&a.model, &again);
}

#[test]
fn an_observed_stage_one_passes_through_every_shorter_warm_start() {
    // With a constant learning rate, the model after t steps of a longer stage 1 is the
    // warm start of `stage1_steps = t, stage2_steps = 0`: `passk warm-starts --curve`
    // profiles candidate warm starts from one run.
    let mut long = TinyCellConfig::nano_smoke(1.0, "pass1_rloo");
    long.sft.stage1_steps = 6;
    long.sft.stage2_steps = 0;
    let mut at_four = None;
    let mut seen = Vec::new();
    train_sft_observed(&long, &Device::Cpu, &mut |stage, done, model| {
        seen.push((stage, done));
        if done == 4 {
            at_four = Some(flat_weights(model));
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, (1..=6).map(|t| (1, t)).collect::<Vec<_>>());
    let mut short = long.clone();
    short.sft.stage1_steps = 4;
    let (direct, _) = train_sft(&short, &Device::Cpu, &mut |_| {}).unwrap();
    assert_eq!(at_four.unwrap(), flat_weights(&direct));
}

/// Every parameter's name and values.
type Weights = Vec<(String, Vec<f32>)>;

/// Runs `warm_start_with` for each config on its own thread, all starting together, and
/// returns per thread whether it was reused, the SFT phases it trained, and its weights.
fn concurrent_warm_starts(
    cfgs: &[TinyCellConfig],
    cache: &Path,
) -> Vec<(bool, Vec<Phase>, Weights)> {
    let barrier = std::sync::Barrier::new(cfgs.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = cfgs
            .iter()
            .map(|cfg| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut phases = Vec::new();
                    barrier.wait();
                    let ws = warm_start_with(cfg, cache, &Device::Cpu, &mut |p| {
                        if !phases.contains(&p.phase) {
                            phases.push(p.phase)
                        }
                    })
                    .unwrap();
                    (ws.reused, phases, flat_weights(&ws.model))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn a_warm_start_needed_twice_at_once_is_trained_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = TinyCellConfig::nano_smoke(0.75, "pass1_rloo");
    let runs = concurrent_warm_starts(&[cfg.clone(), cfg.clone()], dir.path());
    let trained: Vec<_> = runs.iter().filter(|r| !r.1.is_empty()).collect();
    assert_eq!(trained.len(), 1, "trained by more than one thread");
    assert_eq!(runs.iter().filter(|r| !r.0).count(), 1);
    assert_eq!(runs[0].2, runs[1].2, "both threads got the same weights");
    let (alone, _) = train_sft(&cfg, &Device::Cpu, &mut |_| {}).unwrap();
    assert_eq!(runs[0].2, flat_weights(&alone), "locking changed no number");
    // Two q of one seed share stage 1: it is trained once, each stage 2 once.
    let other = tempfile::tempdir().unwrap();
    let mut control = cfg.clone();
    control.mixture.cue_reliability = 1.0;
    let runs = concurrent_warm_starts(&[cfg.clone(), control.clone()], other.path());
    let stage1 = runs.iter().filter(|r| r.1.contains(&Phase::Sft1)).count();
    assert_eq!(stage1, 1, "stage 1 trained by more than one thread");
    assert!(runs.iter().all(|r| !r.0 && r.1.contains(&Phase::Sft2)));
    assert_eq!(runs[0].2, flat_weights(&alone));
    let (control_alone, _) = train_sft(&control, &Device::Cpu, &mut |_| {}).unwrap();
    assert_eq!(runs[1].2, flat_weights(&control_alone));
}

/// The strict-mode error's detail, or a panic.
fn strict_failure(cfg: &TinyCellConfig, cache: &Path) -> String {
    match warm_start_checked(cfg, cache, &Device::Cpu, &mut |_| {}, true) {
        Err(TrainError::WarmStart { detail, .. }) => detail,
        Err(e) => panic!("expected an integrity failure, got {e}"),
        Ok(_) => panic!("a damaged warm start was accepted"),
    }
}

/// The strict-mode failure of a warm start whose own file is gone, so its stage 1 is read:
/// the path named and the detail.
fn strict_stage1_failure(cfg: &TinyCellConfig, cache: &Path) -> (PathBuf, String) {
    let ws = warm_start_path(cfg, cache);
    let _ = std::fs::remove_file(&ws);
    let _ = std::fs::remove_file(ws.with_extension("json"));
    match warm_start_checked(cfg, cache, &Device::Cpu, &mut |_| {}, true) {
        Err(TrainError::WarmStart { path, detail }) => (path, detail),
        Err(e) => panic!("expected an integrity failure, got {e}"),
        Ok(_) => panic!("a damaged stage 1 was used"),
    }
}

#[test]
fn a_damaged_truncated_or_unrecorded_stage1_is_never_used() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = TinyCellConfig::nano_smoke(0.75, "pass1_rloo");
    let a = warm_start_with(&cfg, dir.path(), &Device::Cpu, &mut |_| {}).unwrap();
    let [model1, opt1, _] = stage1_paths(&cfg, dir.path());
    let sidecar1 = stage1_sidecar(dir.path(), &cfg);
    let (original1, original_opt) = (
        std::fs::read(&model1).unwrap(),
        std::fs::read(&opt1).unwrap(),
    );
    // One flipped bit in the last weight: a finite number, so only the sha256 sees it.
    let mut damaged = original1.clone();
    let at = damaged.len() - 4;
    damaged[at] ^= 0x01;
    std::fs::write(&model1, &damaged).unwrap();
    let (path, detail) = strict_stage1_failure(&cfg, dir.path());
    assert_eq!(path, model1);
    assert!(detail.contains("sha256"), "{detail}");
    // By default: stage 1 is retrained (not stage 2 from the damaged one), bit-identically.
    let mut phases = Vec::new();
    let b = warm_start_with(&cfg, dir.path(), &Device::Cpu, &mut |p| {
        phases.push(p.phase)
    })
    .unwrap();
    assert!(phases.contains(&Phase::Sft1), "stage 1 was not retrained");
    assert_same_weights(&a.model, &b.model);
    assert_eq!(std::fs::read(&model1).unwrap(), original1);
    // A truncated optimiser state: named as an integrity failure, not a tensor error.
    std::fs::write(&opt1, &original_opt[..10]).unwrap();
    let (_, detail) = strict_stage1_failure(&cfg, dir.path());
    assert!(
        detail.contains("optimizer") && detail.contains("sha256"),
        "{detail}"
    );
    std::fs::write(&opt1, &original_opt).unwrap();
    // No sidecar (a cache from before they existed): not trusted.
    std::fs::remove_file(&sidecar1).unwrap();
    let (_, detail) = strict_stage1_failure(&cfg, dir.path());
    assert!(detail.contains("sidecar"), "{detail}");
    let c = warm_start_with(&cfg, dir.path(), &Device::Cpu, &mut |_| {}).unwrap();
    assert_same_weights(&a.model, &c.model);
    assert!(
        sidecar1.exists(),
        "the retrained stage 1 has a sidecar again"
    );
}

#[test]
fn a_flipped_byte_in_a_cached_warm_start_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = TinyCellConfig::nano_smoke(0.75, "pass1_rloo");
    let a = warm_start_with(&cfg, dir.path(), &Device::Cpu, &mut |_| {}).unwrap();
    let original = std::fs::read(&a.path).unwrap();
    let sidecar = a.path.with_extension("json");
    let record: WarmStartRecord = crate::files::read_json(&sidecar).unwrap();
    assert_eq!(record, WarmStartRecord::new(&cfg, &original));
    assert_eq!(record.sft_hash, cfg.sft_hash());
    // The lowest byte of the last weight: still a finite number, so only the sha256 sees it.
    let mut damaged = original.clone();
    let at = damaged.len() - 4;
    damaged[at] ^= 0x01;
    std::fs::write(&a.path, &damaged).unwrap();
    let detail = strict_failure(&cfg, dir.path());
    assert!(detail.contains("sha256"), "{detail}");
    assert_eq!(
        std::fs::read(&a.path).unwrap(),
        damaged,
        "strict changed nothing"
    );
    // By default: a warning, then the same weights retrained.
    let mut trained = false;
    let b = warm_start_with(&cfg, dir.path(), &Device::Cpu, &mut |p| {
        trained |= p.phase == Phase::Sft2
    })
    .unwrap();
    assert!(!b.reused && trained);
    assert_same_weights(&a.model, &b.model);
    assert_eq!(std::fs::read(&a.path).unwrap(), original);
    assert_eq!(
        crate::files::read_json::<WarmStartRecord>(&sidecar).unwrap(),
        record
    );
    assert!(
        warm_start_checked(&cfg, dir.path(), &Device::Cpu, &mut |_| {}, true)
            .unwrap()
            .reused
    );
    // A sidecar of another config is caught as well.
    let mut wrong = record.clone();
    wrong.sft_hash = "0123456789abcdef".into();
    crate::files::write_json_atomic(&sidecar, &wrong).unwrap();
    let detail = strict_failure(&cfg, dir.path());
    assert!(detail.contains("0123456789abcdef"), "{detail}");
}

#[test]
fn a_non_finite_weight_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = TinyCellConfig::nano_smoke(0.75, "pass1_rloo");
    let a = warm_start_with(&cfg, dir.path(), &Device::Cpu, &mut |_| {}).unwrap();
    let original = std::fs::read(&a.path).unwrap();
    let sidecar = a.path.with_extension("json");
    let poisoned = Gpt::from_checkpoint(cfg.gpt_config().unwrap(), &a.path, &Device::Cpu).unwrap();
    let (name, var) = poisoned.params().swap_remove(0);
    var.set(&var.as_tensor().affine(1.0, f64::NAN).unwrap())
        .unwrap();
    poisoned.save(&a.path).unwrap();
    // A sidecar that matches the poisoned bytes does not make them acceptable.
    let bytes = std::fs::read(&a.path).unwrap();
    crate::files::write_json_atomic(&sidecar, &WarmStartRecord::new(&cfg, &bytes)).unwrap();
    let detail = strict_failure(&cfg, dir.path());
    assert!(detail.contains(&name) && detail.contains("NaN"), "{detail}");
    // Without sidecar (an older cache entry) it is rejected too, and retrained by default.
    std::fs::remove_file(&sidecar).unwrap();
    let detail = strict_failure(&cfg, dir.path());
    assert!(detail.contains("NaN"), "{detail}");
    assert!(
        !sidecar.exists(),
        "no sidecar is written for rejected weights"
    );
    let b = warm_start_with(&cfg, dir.path(), &Device::Cpu, &mut |_| {}).unwrap();
    assert!(!b.reused);
    assert_same_weights(&a.model, &b.model);
    assert_eq!(std::fs::read(&a.path).unwrap(), original);
}

#[test]
fn a_warm_start_without_sidecar_is_loaded_and_given_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = TinyCellConfig::nano_smoke(0.75, "pass1_rloo");
    let a = warm_start_with(&cfg, dir.path(), &Device::Cpu, &mut |_| {}).unwrap();
    let sidecar = a.path.with_extension("json");
    let written = std::fs::read(&sidecar).unwrap();
    std::fs::remove_file(&sidecar).unwrap();
    let b = warm_start_checked(&cfg, dir.path(), &Device::Cpu, &mut |_| {}, true).unwrap();
    assert!(b.reused);
    assert_same_weights(&a.model, &b.model);
    assert_eq!(std::fs::read(&sidecar).unwrap(), written);
}

#[test]
fn only_temporaries_of_dead_warm_start_writers_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path();
    let _serial = crate::lock::spawn_guard();
    // A pid that no process has now: the highest free one.
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let dead = (2..pid_max).rev().find(|&p| !pid_alive(p)).unwrap();
    let me = std::process::id();
    let h = "0123456789abcdef";
    let removed = [
        format!(".sft-{h}.safetensors.{dead}-0.tmp"),
        format!(".sft-{h}.csv.tmp-{dead}-1"),
        format!("..sft-{h}.safetensors.{dead}-0.tmp.tmp-{dead}"),
        format!(".sft1-{h}.optimizer.safetensors.{dead}-2.tmp"),
    ];
    let kept = [
        format!(".sft-{h}.safetensors.{me}-0.tmp"), // a live writer
        format!(".sft-fedcba9876543210.safetensors.{dead}-0.tmp"), // its lock is held
        format!(".other.{dead}.tmp"),
        format!("sft-{h}.safetensors"),
        format!("sft-{h}.json"),
        format!(".sft-{h}.lock"),
        format!(".sft-{h}.weird"),
    ];
    for name in removed.iter().chain(&kept) {
        std::fs::write(cache.join(name), b"x").unwrap();
    }
    let held = FileLock::acquire(&cache.join(".sft-fedcba9876543210.lock")).unwrap();
    let out = std::thread::scope(|s| {
        s.spawn(|| remove_orphaned_cache_temporaries(cache).unwrap())
            .join()
            .unwrap()
    });
    drop(held);
    let mut expect: Vec<PathBuf> = removed.iter().map(|n| cache.join(n)).collect();
    expect.sort();
    assert_eq!(out, expect);
    for name in &kept {
        assert!(cache.join(name).exists(), "{name} was removed");
    }
}

fn flat_weights(model: &Gpt) -> Weights {
    model
        .params()
        .iter()
        .map(|(name, v)| {
            let t = v.as_tensor().flatten_all().unwrap();
            (name.to_string(), t.to_vec1::<f32>().unwrap())
        })
        .collect()
}
