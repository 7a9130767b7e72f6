//! The compute pipelines, their bind group layouts, and bind groups.
//!
//! Each kernel's WGSL is `shaders/common.wgsl` followed by its own file. Every
//! layout starts with the parameter slot (a uniform with a dynamic offset), so
//! one parameter buffer serves all the dispatches of a window.

use super::engine::BindingBuffers;

/// The kernels, one pipeline each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Tile moments (`moments.wgsl`).
    Moments,
    /// Moments of packed tiles, one invocation each (`moments.wgsl`).
    MomentsPacked,
    /// Tile bucket counts (`buckets.wgsl`).
    Buckets,
    /// Bucket counts of packed tiles, one invocation each (`buckets.wgsl`).
    BucketsPacked,
    /// Quantiles of small segments (`select_small.wgsl`).
    SelectSmall,
    /// Quantiles of packed segments, one invocation each (`select_small.wgsl`).
    SelectPacked,
    /// Radix selection counts (`radix_histogram.wgsl`).
    RadixHistogram,
    /// Radix selection choice (`radix_choose.wgsl`).
    RadixChoose,
}

/// How the shader sees one binding after the parameters.
#[derive(Debug, Clone, Copy)]
enum Access {
    Read,
    ReadWrite,
}

/// A binding: the buffer it names and how it is accessed.
type Binding = (for<'a> fn(&BindingBuffers<'a>) -> &'a wgpu::Buffer, Access);

impl Kernel {
    const ALL: [Kernel; 8] = [
        Kernel::Moments,
        Kernel::MomentsPacked,
        Kernel::Buckets,
        Kernel::BucketsPacked,
        Kernel::SelectSmall,
        Kernel::SelectPacked,
        Kernel::RadixHistogram,
        Kernel::RadixChoose,
    ];

    fn source(self) -> &'static str {
        match self {
            Kernel::Moments | Kernel::MomentsPacked => include_str!("shaders/moments.wgsl"),
            Kernel::Buckets | Kernel::BucketsPacked => include_str!("shaders/buckets.wgsl"),
            Kernel::SelectSmall | Kernel::SelectPacked => {
                include_str!("shaders/select_small.wgsl")
            }
            Kernel::RadixHistogram => include_str!("shaders/radix_histogram.wgsl"),
            Kernel::RadixChoose => include_str!("shaders/radix_choose.wgsl"),
        }
    }

    fn entry_point(self) -> &'static str {
        match self {
            Kernel::Moments => "moments",
            Kernel::MomentsPacked => "moments_packed",
            Kernel::Buckets => "buckets",
            Kernel::BucketsPacked => "buckets_packed",
            Kernel::SelectSmall => "select_small",
            Kernel::SelectPacked => "select_packed",
            Kernel::RadixHistogram => "radix_histogram",
            Kernel::RadixChoose => "radix_choose",
        }
    }

    /// Bindings 1.. in the order of the shader's `@binding` numbers.
    fn bindings(self) -> &'static [Binding] {
        use Access::{Read, ReadWrite};
        match self {
            Kernel::Moments | Kernel::MomentsPacked => &[
                (|b| b.values, Read),
                (|b| b.tiles, Read),
                (|b| b.partials, ReadWrite),
            ],
            Kernel::Buckets | Kernel::BucketsPacked => &[
                (|b| b.values, Read),
                (|b| b.tiles, Read),
                (|b| b.bounds, Read),
                (|b| b.bucket_counts, ReadWrite),
            ],
            Kernel::SelectSmall | Kernel::SelectPacked => &[
                (|b| b.values, Read),
                (|b| b.tiles, Read),
                (|b| b.jobs, Read),
                (|b| b.ranks, Read),
                (|b| b.small_results, ReadWrite),
            ],
            Kernel::RadixHistogram => &[
                (|b| b.values, Read),
                (|b| b.tiles, Read),
                (|b| b.large_tiles, Read),
                (|b| b.states, Read),
                (|b| b.histograms, ReadWrite),
            ],
            Kernel::RadixChoose => &[(|b| b.states, ReadWrite), (|b| b.histograms, ReadWrite)],
        }
    }
}

/// Every kernel's pipeline and layout.
#[derive(Debug)]
pub struct Pipelines {
    compiled: Vec<(wgpu::BindGroupLayout, wgpu::ComputePipeline)>,
}

impl Pipelines {
    /// Compiles every kernel (errors surface through the device's faults).
    pub fn new(device: &wgpu::Device) -> Pipelines {
        let compiled = Kernel::ALL
            .iter()
            .map(|&kernel| {
                let mut entries = vec![wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: None,
                    },
                    count: None,
                }];
                for (i, (_, access)) in kernel.bindings().iter().enumerate() {
                    entries.push(wgpu::BindGroupLayoutEntry {
                        binding: i as u32 + 1,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: wgpu::BindingType::Buffer {
                            ty: wgpu::BufferBindingType::Storage {
                                read_only: matches!(access, Access::Read),
                            },
                            has_dynamic_offset: false,
                            min_binding_size: None,
                        },
                        count: None,
                    });
                }
                let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(kernel.entry_point()),
                    entries: &entries,
                });
                let pipeline_layout =
                    device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                        label: Some(kernel.entry_point()),
                        bind_group_layouts: &[Some(&layout)],
                        immediate_size: 0,
                    });
                let source = format!(
                    "{}\n{}",
                    include_str!("shaders/common.wgsl"),
                    kernel.source()
                );
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(kernel.entry_point()),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                });
                let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(kernel.entry_point()),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(kernel.entry_point()),
                    compilation_options: wgpu::PipelineCompilationOptions::default(),
                    cache: None,
                });
                (layout, pipeline)
            })
            .collect();
        Pipelines { compiled }
    }

    fn index(kernel: Kernel) -> usize {
        Kernel::ALL
            .iter()
            .position(|&k| k == kernel)
            .expect("every kernel is in ALL")
    }

    /// The pipeline of `kernel`.
    pub fn pipeline(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        &self.compiled[Self::index(kernel)].1
    }

    /// A bind group of `kernel` over `buffers`; the parameter binding is one
    /// slot wide, placed by the dispatch's dynamic offset.
    pub fn bind_group(
        &self,
        device: &wgpu::Device,
        kernel: Kernel,
        buffers: &BindingBuffers<'_>,
    ) -> wgpu::BindGroup {
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: buffers.params,
                offset: 0,
                size: wgpu::BufferSize::new(32),
            }),
        }];
        for (i, (buffer, _)) in kernel.bindings().iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: buffer(buffers).as_entire_binding(),
            });
        }
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.entry_point()),
            layout: &self.compiled[Self::index(kernel)].0,
            entries: &entries,
        })
    }
}
