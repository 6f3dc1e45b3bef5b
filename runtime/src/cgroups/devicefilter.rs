//! Generation of the cgroup v2 device filter: a `BPF_PROG_TYPE_CGROUP_DEVICE` program
//! equivalent to runc's `devicefilter` (itself from crun's `ebpf.c`).
//!
//! The kernel runs the program with `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
//! u32 minor; }` in R1, where `access_type` is `type | access << 16`. The program loads those
//! into R2..R5, then has one block per exception rule (in the emulator's order): if type,
//! access, major and minor match, return the rule's verdict; otherwise fall through to the next
//! block. The last block returns the default policy.

use super::devices::{DevType, Emulator, Rule, ACC_ALL};
use super::CgroupError;

/// License string passed to `BPF_PROG_LOAD` (same as runc).
pub const LICENSE: &std::ffi::CStr = c"Apache";

const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;

/// Instruction classes and opcodes used by the filter (linux/bpf_common.h, linux/bpf.h).
mod op {
    pub const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
    pub const AND32_IMM: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
    pub const RSH32_IMM: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
    pub const MOV32_IMM: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
    pub const MOV32_REG: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
    pub const JNE_IMM: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
    pub const JNE_REG: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
    pub const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT
}

/// One `struct bpf_insn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// The 8 bytes the kernel reads: code, dst (low nibble) | src (high nibble), off, imm.
    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.dst & 0x0f) | (self.src << 4);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

/// A jump whose target block is not yet placed.
struct Pending {
    at: usize,
    block: usize,
}

/// Builds the device filter for `rules` (applied in order to a deny-all cgroup, like runc).
pub fn device_filter_program(
    rules: &[oci_spec::runtime::LinuxDeviceCgroup],
) -> Result<Vec<Insn>, CgroupError> {
    let rules = super::devices::from_spec(rules)?;
    program_for(&Emulator::from_rules(&rules)?)
}

pub(crate) fn program_for(state: &Emulator) -> Result<Vec<Insn>, CgroupError> {
    let mut p = vec![
        Insn::new(op::LDX_MEM_W, 2, 1, 0, 0),      // R2 <- access_type
        Insn::new(op::AND32_IMM, 2, 0, 0, 0xFFFF), // R2 &= 0xffff (device type)
        Insn::new(op::LDX_MEM_W, 3, 1, 0, 0),      // R3 <- access_type
        Insn::new(op::RSH32_IMM, 3, 0, 0, 16),     // R3 >>= 16 (access)
        Insn::new(op::LDX_MEM_W, 4, 1, 4, 0),      // R4 <- major
        Insn::new(op::LDX_MEM_W, 5, 1, 8, 0),      // R5 <- minor
    ];
    let mut starts = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();
    for (block, rule) in state.exception_rules().iter().enumerate() {
        starts.push(p.len());
        append_rule(&mut p, &mut pending, block, rule)?;
    }
    starts.push(p.len());
    p.push(Insn::new(
        op::MOV32_IMM,
        0,
        0,
        0,
        i32::from(state.default_allow),
    ));
    p.push(Insn::new(op::EXIT, 0, 0, 0, 0));
    for j in pending {
        let target = starts[j.block];
        let off = target as i64 - (j.at as i64 + 1);
        p[j.at].off = i16::try_from(off).map_err(|_| CgroupError::InvalidResource {
            field: "linux.resources.devices".into(),
            reason: "too many device rules for one eBPF program".into(),
        })?;
    }
    Ok(p)
}

fn append_rule(
    p: &mut Vec<Insn>,
    pending: &mut Vec<Pending>,
    block: usize,
    rule: &Rule,
) -> Result<(), CgroupError> {
    let typ = match rule.typ {
        DevType::Block => BPF_DEVCG_DEV_BLOCK,
        DevType::Char => BPF_DEVCG_DEV_CHAR,
        DevType::All => {
            return Err(CgroupError::InvalidResource {
                field: "linux.resources.devices".into(),
                reason: "internal error: a wildcard-type rule reached the eBPF generator".into(),
            })
        }
    };
    let next = block + 1;
    let mut jne = |p: &mut Vec<Insn>, insn: Insn| {
        pending.push(Pending {
            at: p.len(),
            block: next,
        });
        p.push(insn);
    };
    jne(p, Insn::new(op::JNE_IMM, 2, 0, 0, typ));
    if rule.access != ACC_ALL {
        // if (R3 & access) != R3: the request wants more than the rule covers.
        p.push(Insn::new(op::MOV32_REG, 1, 3, 0, 0));
        p.push(Insn::new(op::AND32_IMM, 1, 0, 0, i32::from(rule.access)));
        jne(p, Insn::new(op::JNE_REG, 1, 3, 0, 0));
    }
    if let Some(major) = rule.major {
        jne(p, Insn::new(op::JNE_IMM, 4, 0, 0, major as i32));
    }
    if let Some(minor) = rule.minor {
        jne(p, Insn::new(op::JNE_IMM, 5, 0, 0, minor as i32));
    }
    p.push(Insn::new(op::MOV32_IMM, 0, 0, 0, i32::from(rule.allow)));
    p.push(Insn::new(op::EXIT, 0, 0, 0, 0));
    Ok(())
}

/// Renders instructions like cilium/ebpf's `asm` listing that runc's tests use, with jump
/// targets resolved to instruction indexes (`-> N`).
#[cfg(test)]
fn render(p: &[Insn]) -> Vec<String> {
    p.iter()
        .enumerate()
        .map(|(i, x)| {
            let target = i as i64 + 1 + i64::from(x.off);
            match x.code {
                op::LDX_MEM_W => format!(
                    "{i}: LdXMemW dst: r{} src: r{} off: {} imm: {}",
                    x.dst, x.src, x.off, x.imm
                ),
                op::AND32_IMM => format!("{i}: AndImm32 dst: r{} imm: {}", x.dst, x.imm),
                op::RSH32_IMM => format!("{i}: RShImm32 dst: r{} imm: {}", x.dst, x.imm),
                op::MOV32_IMM => format!("{i}: MovImm32 dst: r{} imm: {}", x.dst, x.imm),
                op::MOV32_REG => format!("{i}: MovReg32 dst: r{} src: r{}", x.dst, x.src),
                op::JNE_IMM => format!("{i}: JNEImm dst: r{} imm: {} -> {target}", x.dst, x.imm),
                op::JNE_REG => format!("{i}: JNEReg dst: r{} src: r{} -> {target}", x.dst, x.src),
                op::EXIT => format!("{i}: Exit"),
                c => format!("{i}: unknown opcode {c:#x}"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::devices::{default_device_rules, ACC_MKNOD, ACC_READ, ACC_WRITE};
    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType};

    /// Runs the program the way the kernel would for one device access; returns R0.
    fn run(p: &[Insn], typ: i32, access: u8, major: u32, minor: u32) -> u64 {
        let ctx = [(typ as u32) | (u32::from(access) << 16), major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let x = p[pc];
            let (d, s) = (x.dst as usize, x.src as usize);
            pc += 1;
            match x.code {
                op::LDX_MEM_W => {
                    assert_eq!(s, 1, "only ctx loads");
                    r[d] = u64::from(ctx[x.off as usize / 4]);
                }
                op::AND32_IMM => r[d] = u64::from((r[d] as u32) & (x.imm as u32)),
                op::RSH32_IMM => r[d] = u64::from((r[d] as u32) >> x.imm),
                op::MOV32_IMM => r[d] = u64::from(x.imm as u32),
                op::MOV32_REG => r[d] = u64::from(r[s] as u32),
                op::JNE_IMM => {
                    if r[d] != x.imm as i64 as u64 {
                        pc = (pc as i64 + i64::from(x.off)) as usize;
                    }
                }
                op::JNE_REG => {
                    if r[d] != r[s] {
                        pc = (pc as i64 + i64::from(x.off)) as usize;
                    }
                }
                op::EXIT => return r[0],
                c => panic!("unknown opcode {c:#x}"),
            }
        }
        panic!("program did not exit");
    }

    fn deny_all_then(
        mut rules: Vec<oci_spec::runtime::LinuxDeviceCgroup>,
    ) -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
        rules.insert(
            0,
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()
                .unwrap(),
        );
        rules
    }

    #[test]
    fn no_rules_rejects_everything() {
        let p = device_filter_program(&[]).unwrap();
        let expect = [
            "0: LdXMemW dst: r2 src: r1 off: 0 imm: 0",
            "1: AndImm32 dst: r2 imm: 65535",
            "2: LdXMemW dst: r3 src: r1 off: 0 imm: 0",
            "3: RShImm32 dst: r3 imm: 16",
            "4: LdXMemW dst: r4 src: r1 off: 4 imm: 0",
            "5: LdXMemW dst: r5 src: r1 off: 8 imm: 0",
            "6: MovImm32 dst: r0 imm: 0",
            "7: Exit",
        ];
        assert_eq!(render(&p), expect);
    }

    #[test]
    fn default_allow_list_matches_runcs_program() {
        // runc's TestDeviceFilter_BuiltInAllowList, with its block labels resolved.
        let p = device_filter_program(&default_device_rules()).unwrap();
        let mut expect: Vec<String> = vec![
            "6: JNEImm dst: r2 imm: 1 -> 12",
            "7: MovReg32 dst: r1 src: r3",
            "8: AndImm32 dst: r1 imm: 1",
            "9: JNEReg dst: r1 src: r3 -> 12",
            "10: MovImm32 dst: r0 imm: 1",
            "11: Exit",
            "12: JNEImm dst: r2 imm: 2 -> 18",
            "13: MovReg32 dst: r1 src: r3",
            "14: AndImm32 dst: r1 imm: 1",
            "15: JNEReg dst: r1 src: r3 -> 18",
            "16: MovImm32 dst: r0 imm: 1",
            "17: Exit",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let mut at = 18;
        for (major, minor) in [
            (1, 3),
            (1, 5),
            (1, 7),
            (1, 8),
            (1, 9),
            (5, 0),
            (5, 2),
            (10, 200),
        ] {
            let next = at + 5;
            expect.push(format!("{at}: JNEImm dst: r2 imm: 2 -> {next}"));
            expect.push(format!("{}: JNEImm dst: r4 imm: {major} -> {next}", at + 1));
            expect.push(format!("{}: JNEImm dst: r5 imm: {minor} -> {next}", at + 2));
            expect.push(format!("{}: MovImm32 dst: r0 imm: 1", at + 3));
            expect.push(format!("{}: Exit", at + 4));
            at = next;
        }
        assert_eq!(at, 58);
        expect.extend(
            [
                "58: JNEImm dst: r2 imm: 2 -> 62",
                "59: JNEImm dst: r4 imm: 136 -> 62",
                "60: MovImm32 dst: r0 imm: 1",
                "61: Exit",
                "62: MovImm32 dst: r0 imm: 0",
                "63: Exit",
            ]
            .map(String::from),
        );
        assert_eq!(render(&p)[6..], expect[..]);
    }

    #[test]
    fn default_allow_list_behaves_like_the_v1_controller() {
        let p = device_filter_program(&deny_all_then(default_device_rules())).unwrap();
        let rw = ACC_READ | ACC_WRITE;
        assert_eq!(run(&p, BPF_DEVCG_DEV_CHAR, rw, 1, 3), 1, "/dev/null rw");
        assert_eq!(run(&p, BPF_DEVCG_DEV_CHAR, rw, 136, 7), 1, "/dev/pts/7");
        assert_eq!(run(&p, BPF_DEVCG_DEV_CHAR, rw, 10, 200), 1, "/dev/net/tun");
        assert_eq!(
            run(&p, BPF_DEVCG_DEV_BLOCK, ACC_READ, 8, 0),
            0,
            "/dev/sda read"
        );
        assert_eq!(
            run(&p, BPF_DEVCG_DEV_BLOCK, ACC_MKNOD, 8, 0),
            1,
            "mknod any block device"
        );
        assert_eq!(
            run(&p, BPF_DEVCG_DEV_CHAR, ACC_MKNOD | ACC_READ, 4, 1),
            0,
            "mknod+read tty1"
        );
        assert_eq!(
            run(&p, BPF_DEVCG_DEV_CHAR, rw, 5, 1),
            0,
            "/dev/console is not in runc's list"
        );
    }

    #[test]
    fn allow_all_with_one_denied_device() {
        // runc's TestDeviceFilter_PrivilegedExceptSingleDevice.
        let rules = vec![
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .typ(LinuxDeviceType::B)
                .major(8)
                .minor(0)
                .access("rwm")
                .build()
                .unwrap(),
        ];
        let p = device_filter_program(&rules).unwrap();
        assert_eq!(
            render(&p)[6..],
            [
                "6: JNEImm dst: r2 imm: 1 -> 11",
                "7: JNEImm dst: r4 imm: 8 -> 11",
                "8: JNEImm dst: r5 imm: 0 -> 11",
                "9: MovImm32 dst: r0 imm: 0",
                "10: Exit",
                "11: MovImm32 dst: r0 imm: 1",
                "12: Exit"
            ]
        );
        assert_eq!(run(&p, BPF_DEVCG_DEV_BLOCK, ACC_READ, 8, 0), 0);
        assert_eq!(run(&p, BPF_DEVCG_DEV_BLOCK, ACC_READ, 8, 1), 1);
    }

    #[test]
    fn instructions_encode_as_struct_bpf_insn() {
        let x = Insn::new(op::JNE_IMM, 4, 0, -3, 136).encode();
        assert_eq!(x, [0x55, 0x04, 0xfd, 0xff, 136, 0, 0, 0]);
        let x = Insn::new(op::LDX_MEM_W, 2, 1, 8, 0).encode();
        assert_eq!(x, [0x61, 0x12, 8, 0, 0, 0, 0, 0]);
    }
}
