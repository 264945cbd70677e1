//! Verifying 100k GSM8K-length completions (target: under 1 s on one core).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use passk_tasks::{Check, Family, Prompt, StandardVerifier, Verifier};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

/// A GSM8K-like worked solution of about 300 bytes ending in an answer in one of several styles.
fn completion(rng: &mut ChaCha8Rng, answer: u64) -> String {
    let a: u64 = rng.random_range(2..500);
    let b: u64 = rng.random_range(2..50);
    let mut s = format!(
        "Janet has {a} apples and buys {b} more bags with 4 apples each, so she gets {b} * 4 = \
         <<{b}*4={}>>{} apples. In total she has {a} + {} = <<{a}+{}={}>>{} apples. She sells half \
         of them at $2 each, which is a fair price for the farmers' market.\n",
        b * 4,
        b * 4,
        b * 4,
        b * 4,
        a + b * 4,
        a + b * 4
    );
    match rng.random_range(0..4) {
        0 => s.push_str(&format!("#### {answer}")),
        1 => s.push_str(&format!("The answer is $\\boxed{{{answer}}}$.")),
        2 => s.push_str(&format!("#### ${},000.", answer / 1000 + 1)),
        _ => s.push_str(&format!("So she makes {answer} dollars.")),
    }
    s
}

fn bench(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let n = 100_000;
    let cases: Vec<(Prompt, String)> = (0..n)
        .map(|i| {
            let answer: u64 = rng.random_range(1..100_000);
            let prompt = Prompt {
                id: format!("bench:{i}"),
                family: Family::Gsm8k,
                text: String::new(),
                reference: answer.to_string(),
                difficulty: 0,
                check: Check::Gsm8k,
                split: None,
                cue_truthful: None,
                alt_reference: None,
                solution: None,
            };
            let text = completion(&mut rng, answer);
            (prompt, text)
        })
        .collect();
    let bytes: usize = cases.iter().map(|c| c.1.len()).sum();
    println!("mean completion length: {} bytes", bytes / n);
    let mut g = c.benchmark_group("verify");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("gsm8k_100k", |b| {
        b.iter(|| {
            let correct = cases
                .iter()
                .filter(|(p, t)| StandardVerifier.verify(p, t).is_correct())
                .count();
            black_box(correct)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
