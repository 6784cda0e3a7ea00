//! Property test: mutated configs never panic the compiler, and every diagnostic it
//! gives points inside the file. `CONVEYOR_MUTATIONS` sets the number of cases.

use conveyor_core::compile::compile;

const TOKENS: &[&str] = &[
    "${",
    "{{",
    "}}",
    "}",
    ":",
    "- ",
    "&a ",
    "*a",
    "<<: *a",
    "\t",
    "'",
    "\"",
    "|",
    "\n  ",
    "[",
    "{",
    "é",
    "\u{0}",
    "#",
    "${a.b}",
    "{{ x.y.Z }}",
    "needs: [",
    "---\n",
    "!!str ",
    "? ",
    "\r\n",
    "0x",
];

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn corpus() -> Vec<String> {
    let files = [
        "../examples/seed/ror-api-backend.yml",
        "../examples/seed/ami.yml",
        "../examples/seed/terraform.yml",
        "../examples/demo/demo.yml",
        "../examples/demo/demo-deploy.yml",
        "tests/fixtures/later-dialect.yml",
    ];
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("corpus file"))
        .collect()
}

fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut s: Vec<char> = text.chars().collect();
    for _ in 0..=rng.below(4) {
        let at = rng.below(s.len() + 1);
        match rng.below(5) {
            0 => {
                let end = (at + rng.below(40)).min(s.len());
                s.drain(at..end);
            }
            1 => {
                let tok = TOKENS[rng.below(TOKENS.len())];
                s.splice(at..at, tok.chars());
            }
            2 => {
                // Duplicate a stretch: repeated keys, jobs and list items.
                let end = (at + rng.below(120)).min(s.len());
                let copy: Vec<char> = s[at..end].to_vec();
                s.splice(end..end, copy);
            }
            3 => s.truncate(at),
            _ => {
                if at < s.len() {
                    s[at] = char::from(b' ' + rng.below(95) as u8);
                }
            }
        }
    }
    s.into_iter().collect()
}

#[test]
fn mutated_configs_never_panic_and_every_message_is_located_in_the_file() {
    let cases: usize = std::env::var("CONVEYOR_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let corpus = corpus();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..cases {
        let text = mutate(&corpus[i % corpus.len()], &mut rng);
        let out = std::panic::catch_unwind(|| compile("m.yml", &text));
        let Ok(c) = out else {
            panic!("the compiler panicked on case {i}:\n{text}");
        };
        let lines = text.lines().count() as u32 + 1;
        for d in &c.diagnostics {
            assert!(
                d.pos.line >= 1 && d.pos.line <= lines,
                "case {i}: {d} is outside the file:\n{text}"
            );
            assert!(!d.message.is_empty());
        }
        let has_errors = c.diagnostics.iter().any(|d| d.is_error());
        assert_eq!(
            c.product.is_some(),
            !has_errors,
            "case {i}: a product is returned exactly when there is no error"
        );
    }
}
