use super::*;
use crate::mixture::{Mixture, MixtureConfig};
use crate::prompt::{Family, Split};
use crate::synth::addition_prompt;
use crate::verify::StandardVerifier;

#[test]
fn synthetic_vocabulary_is_fixed_and_small() {
    let t = CharTokenizer::synthetic();
    assert_eq!(t.vocab()[..3], ["<pad>", "<bos>", "<eos>"]);
    assert_eq!(
        (t.pad_id(), t.bos_id(), t.eos_id()),
        (Some(0), Some(1), Some(2))
    );
    assert_eq!(t.vocab()[3], "0");
    assert_eq!(t.vocab_size(), 3 + 10 + 9 + 9);
}

#[test]
fn encodes_tags_as_single_tokens_and_round_trips() {
    let t = CharTokenizer::synthetic();
    let ids = t.encode("<R>123+045=").unwrap();
    assert_eq!(ids.len(), 9);
    assert_eq!(t.decode(&ids).unwrap(), "<R>123+045=");
    let ids = t.encode("<m97>01*02=").unwrap();
    assert_eq!(ids.len(), 7);
    assert!(matches!(
        t.encode("12 + 3"),
        Err(TokenizerError::UnknownSymbol { at: 2, .. })
    ));
    assert!(matches!(
        t.encode("<X>1"),
        Err(TokenizerError::UnknownSymbol { at: 0, .. })
    ));
    assert!(matches!(
        t.encode("é"),
        Err(TokenizerError::UnknownSymbol { .. })
    ));
    assert!(matches!(
        t.decode(&[999]),
        Err(TokenizerError::UnknownId(999))
    ));
}

#[test]
fn every_mixture_prompt_and_reference_tokenizes() {
    let t = CharTokenizer::synthetic();
    let m = Mixture::new(MixtureConfig::preset("arithmetic").unwrap()).unwrap();
    for p in m.generate(Split::Train, 2000, 4).unwrap() {
        let ids = prompt_ids(&t, &p).unwrap();
        assert_eq!(ids[0], 1);
        let target = reference_ids(&t, &p).unwrap();
        assert_eq!(*target.last().unwrap(), 2);
        // Decoding the SFT target, as if sampled, verifies.
        assert!(
            verify_ids(&StandardVerifier, &t, &p, &target).is_correct(),
            "{p:?}"
        );
    }
}

#[test]
fn interference_prompts_all_have_the_same_length() {
    let t = CharTokenizer::synthetic();
    let m = Mixture::new(MixtureConfig::preset("interference").unwrap()).unwrap();
    let lens: std::collections::HashSet<(usize, usize)> = m
        .generate(Split::Train, 500, 1)
        .unwrap()
        .iter()
        .map(|p| {
            (
                prompt_ids(&t, p).unwrap().len(),
                reference_ids(&t, p).unwrap().len(),
            )
        })
        .collect();
    assert_eq!(lens.into_iter().collect::<Vec<_>>(), vec![(10, 5)]);
}

#[test]
fn sampled_ids_stop_at_eos_and_bad_ids_are_incorrect() {
    let t = CharTokenizer::synthetic();
    let p = addition_prompt(123, 45, 3, Family::Addition, true);
    let mut ids = t.encode("0168").unwrap();
    ids.push(2);
    ids.extend(t.encode("999").unwrap());
    assert_eq!(completion_text(&t, &ids).unwrap(), "0168");
    assert!(verify_ids(&StandardVerifier, &t, &p, &ids).is_correct());
    let no_eos = t.encode("01689").unwrap();
    assert!(!verify_ids(&StandardVerifier, &t, &p, &no_eos).is_correct());
    let with_bos = [1, 3, 4];
    assert!(matches!(
        verify_ids(&StandardVerifier, &t, &p, &with_bos).failure(),
        Some(Failure::Unparseable { .. })
    ));
    let out_of_vocab = verify_ids(&StandardVerifier, &t, &p, &[500]);
    assert!(matches!(
        out_of_vocab.failure(),
        Some(Failure::Unparseable { .. })
    ));
    assert_eq!(
        verify_ids(&StandardVerifier, &t, &p, &[2]).failure(),
        Some(&Failure::NoAnswer)
    );
}

#[test]
fn custom_vocabularies_are_checked() {
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(CharTokenizer::from_vocab(v(&["<pad>", "<bos>", "<eos>", "a"])).is_ok());
    assert!(CharTokenizer::from_vocab(v(&["<pad>", "<bos>", "a"])).is_err());
    assert!(CharTokenizer::from_vocab(v(&["<pad>", "<bos>", "<eos>", "a", "a"])).is_err());
    assert!(CharTokenizer::from_vocab(v(&["<pad>", "<bos>", "<eos>", "ab"])).is_err());
}

const WORD_LEVEL_JSON: &str = r#"{
  "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
  "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
  "decoder": null,
  "model": {"type": "WordLevel", "unk_token": "<unk>",
            "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "1": 3, "2": 4, "+": 5, "=": 6}}
}"#;

#[test]
fn hf_tokenizer_loads_tokenizer_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, WORD_LEVEL_JSON).unwrap();
    let special = SpecialTokens {
        bos: Some("<s>".into()),
        eos: Some("</s>".into()),
        pad: None,
    };
    let t = HfTokenizer::from_file(&path, &special).unwrap();
    assert_eq!(
        (t.bos_id(), t.eos_id(), t.pad_id(), t.vocab_size()),
        (Some(1), Some(2), None, 7)
    );
    assert_eq!(t.encode("1 + 2 =").unwrap(), vec![3, 5, 4, 6]);
    assert_eq!(t.decode(&[3, 5, 4]).unwrap(), "1 + 2");
    assert_eq!(completion_text(&t, &[3, 2, 4]).unwrap(), "1");
    assert!(matches!(
        t.decode(&[99]),
        Err(TokenizerError::UnknownId(99))
    ));
    let missing = SpecialTokens {
        eos: Some("<|im_end|>".into()),
        ..Default::default()
    };
    assert!(matches!(
        HfTokenizer::from_file(&path, &missing),
        Err(TokenizerError::MissingSpecial(_))
    ));
    let err = HfTokenizer::from_file(&dir.path().join("absent.json"), &special).unwrap_err();
    assert!(err.to_string().contains("absent.json"), "{err}");
}

#[test]
fn tokenizers_are_usable_as_trait_objects() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, WORD_LEVEL_JSON).unwrap();
    let boxed: Vec<Box<dyn Tokenizer>> = vec![
        Box::new(CharTokenizer::synthetic()),
        Box::new(HfTokenizer::from_file(&path, &SpecialTokens::default()).unwrap()),
    ];
    for t in &boxed {
        let ids = t
            .encode("1+2=")
            .unwrap_or_else(|_| t.encode("1 + 2 =").unwrap());
        assert!(!ids.is_empty());
    }
}
