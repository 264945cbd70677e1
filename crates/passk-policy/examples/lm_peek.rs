use candle_core::Device;
use passk_policy::lm::{read_gguf, smollm2_prompt, CausalLm, LmTokenizer};
use passk_policy::SamplingParams;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var("PASSK_SMOLLM2_GGUF")?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ck = read_gguf(&path)?;
    let tok = LmTokenizer::from_gguf_metadata(&ck.metadata)?;
    let model = CausalLm::from_tensors(ck.config.clone(), ck.tensors, &Device::Cpu)?;
    let new: usize = args[0].parse()?;
    let prompts: Vec<Vec<u32>> = args[1..]
        .iter()
        .map(|q| tok.encode(&smollm2_prompt(q)))
        .collect::<Result<_, _>>()?;
    let params = SamplingParams {
        temperature: std::env::var("T")
            .map(|t| t.parse().unwrap())
            .unwrap_or(1.0),
        top_p: 1.0,
    };
    let stop = vec![tok.token_id("<|im_end|>").unwrap_or(2)];
    let out = model.sample(&prompts, 4, new, &stop, params, |p, s| {
        (p * 1000 + s) as u64
    })?;
    for o in &out {
        println!("{:?}", tok.decode(o, false)?);
    }
    Ok(())
}
