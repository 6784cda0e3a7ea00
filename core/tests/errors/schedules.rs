//! `schedule:` triggers.

use crate::case;

case!(
    a_schedule_needs_a_valid_cron_pattern_a_branch_and_known_belts,
    "product: p\ntriggers:\n  - schedule:\n      cron: '61 * * * *'\n  - schedule:\n      branch: main\n  - schedule:\n      cron: '0 3 * * *'\n      branch: 'a..b'\n      belts: [nigthly]\n      every: day\nbelts:\n  - name: nightly\n    jobs:\n      - name: j\n        commands: 'true'\n",
    [
        "t.yml:4:13: error: invalid cron pattern `61 * * * *`: Component error: Number out of bounds.",
        "t.yml:6:7: error: `schedule` trigger needs `cron`, e.g. `cron: \"0 3 * * *\"` (UTC; five fields, or six with seconds first)",
        "t.yml:9:15: error: invalid branch name `a..b`",
        "t.yml:10:15: error: trigger names unknown belt `nigthly` (did you mean `nightly`?)",
        "t.yml:11:7: error: unknown key `every` in a `schedule` trigger",
    ]
);
