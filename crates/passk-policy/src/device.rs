//! Choosing the compute device: [`DeviceChoice`].

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

use crate::error::{PolicyError, Result};

/// Which device to run on, as a user writes it (`cpu`, `cuda`, `auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceChoice {
    /// The CPU, in f32.
    #[default]
    Cpu,
    /// The first CUDA device; an error when the crate was built without the `cuda` feature or no
    /// GPU is present.
    Cuda,
    /// CUDA when compiled with the `cuda` feature and a GPU exists, else the CPU.
    Auto,
}

impl DeviceChoice {
    /// Opens the chosen device.
    pub fn device(self) -> Result<Device> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda => open_cuda(),
            DeviceChoice::Auto => Ok(open_cuda().unwrap_or(Device::Cpu)),
        }
    }
}

#[cfg(feature = "cuda")]
fn open_cuda() -> Result<Device> {
    Device::new_cuda(0).map_err(|e| {
        PolicyError::Device(format!(
            "no usable CUDA device 0 ({e}); use --device cpu or auto"
        ))
    })
}

#[cfg(not(feature = "cuda"))]
fn open_cuda() -> Result<Device> {
    Err(PolicyError::Device(
        "this build has no CUDA support; rebuild with `--features cuda` or use --device cpu"
            .to_string(),
    ))
}

impl FromStr for DeviceChoice {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda),
            "auto" => Ok(DeviceChoice::Auto),
            other => Err(PolicyError::Device(format!(
                "unknown device {other:?}; expected one of cpu, cuda, auto"
            ))),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Cuda => "cuda",
            DeviceChoice::Auto => "auto",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (text, choice) in [
            ("cpu", DeviceChoice::Cpu),
            ("CUDA", DeviceChoice::Cuda),
            (" auto ", DeviceChoice::Auto),
        ] {
            let parsed: DeviceChoice = text.parse().unwrap();
            assert_eq!(parsed, choice);
            assert_eq!(parsed.to_string().parse::<DeviceChoice>().unwrap(), choice);
        }
        let err = "tpu".parse::<DeviceChoice>().unwrap_err().to_string();
        assert!(err.contains("cpu, cuda, auto"), "{err}");
    }

    #[test]
    fn cpu_and_auto_always_open() {
        assert!(DeviceChoice::Cpu.device().unwrap().is_cpu());
        DeviceChoice::Auto.device().unwrap();
        #[cfg(not(feature = "cuda"))]
        assert!(DeviceChoice::Cuda.device().is_err());
    }
}
