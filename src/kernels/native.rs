//! The bucket layout of Prometheus native histograms, shared by every backend.
//!
//! A native histogram of schema `s` has buckets whose upper bounds are powers of
//! `base = 2^(2^-s)`: bucket `k` holds the values `v` with `base^(k-1) < |v| <=
//! base^k`; values with `|v| <= zero_threshold` go to the zero bucket, and the
//! sign of `v` picks the positive or negative bucket set. Schemas run from -4
//! (base 65536) to 8 (base 2^(1/256)).
//!
//! The index is computed as Prometheus' Go client computes it, so that tallyd's
//! buckets are the buckets Prometheus' own clients would fill: `frexp` splits
//! `|v|` into `frac * 2^exp` with `frac` in `[0.5, 1)`; for `s > 0` the key is
//! the number of the octave's bounds `2^(j/2^s - 1)` below `frac` plus
//! `(exp - 1) * 2^s`; for `s <= 0` it is `exp` (less one when `frac` is exactly 0.5)
//! divided by `2^-s`, rounded up. There is no `log2` and so no rounding at a
//! bucket edge: a power of the base lands in the bucket it closes.
//!
//! The octave's bounds are Prometheus' own numbers ([`SCHEMA_8_BOUNDS`]), the
//! table its client and server share; every lower schema's bounds are every
//! `2^(8-s)`-th of them. They are not the correctly rounded values of `2^(j/256 -
//! 1)` (most differ from those in the last place), so computing them here
//! would move values at bucket edges into other buckets than Prometheus'.
//! Because each schema's bounds are a subset of the next one's, lowering a
//! schema by merging pairs of buckets is exact.
//!
//! The vector backends find `frac`'s place without a search: the top `s + 1`
//! bits of its mantissa name a cell of the octave narrower than the gap between
//! two bounds, so at most one bound falls inside a cell and one comparison
//! settles the key ([`Layout::cell_below`], [`Layout::cell_edge`]).

use std::sync::OnceLock;

/// The schema-8 bounds of an octave, `2^(j/256 - 1)` for `j = 0..256`, as
/// Prometheus defines them (the same table in client_golang and in the server's
/// `histogram_quantile`): the standard, not a computation to repeat.
#[rustfmt::skip]
pub const SCHEMA_8_BOUNDS: [f64; 256] = [
    0.5, 0.5013556375251013, 0.5027149505564014, 0.5040779490592088,
    0.5054446430258502, 0.5068150424757447, 0.5081891574554764, 0.509566998038869,
    0.5109485743270583, 0.5123338964485679, 0.5137229745593818, 0.5151158188430205,
    0.5165124395106142, 0.5179128468009786, 0.5193170509806894, 0.520725062344158,
    0.5221368912137069, 0.5235525479396449, 0.5249720429003435, 0.526395386502313,
    0.5278225891802786, 0.5292536613972564, 0.5306886136446309, 0.5321274564422321,
    0.5335702003384117, 0.5350168559101208, 0.5364674337629877, 0.5379219445313954,
    0.5393803988785598, 0.5408428074966075, 0.5423091811066545, 0.5437795304588847,
    0.5452538663326288, 0.5467321995364429, 0.5482145409081883, 0.549700901315111,
    0.5511912916539204, 0.5526857228508706, 0.5541842058618393, 0.5556867516724088,
    0.5571933712979462, 0.5587040757836845, 0.5602188762048033, 0.5617377836665098,
    0.5632608093041209, 0.564787964283144, 0.5663192597993595, 0.5678547070789026,
    0.5693943173783458, 0.5709381019847808, 0.572486072215902, 0.5740382394200894,
    0.5755946149764913, 0.5771552102951081, 0.5787200368168754, 0.5802891060137493,
    0.5818624293887887, 0.5834400184762408, 0.585021884841625, 0.5866080400818185,
    0.5881984958251406, 0.5897932637314379, 0.5913923554921704, 0.5929957828304968,
    0.5946035575013605, 0.5962156912915756, 0.5978321960199137, 0.5994530835371903,
    0.6010783657263515, 0.6027080545025619, 0.6043421618132907, 0.6059806996384005,
    0.6076236799902344, 0.6092711149137041, 0.6109230164863786, 0.6125793968185725,
    0.6142402680534349, 0.6159056423670379, 0.6175755319684665, 0.6192499490999082,
    0.620928906036742, 0.622612415087629, 0.6243004885946023, 0.6259931389331581,
    0.6276903785123455, 0.6293922197748583, 0.6310986751971253, 0.6328097572894031,
    0.6345254785958666, 0.6362458516947014, 0.637970889198196, 0.6397006037528346,
    0.6414350080393891, 0.6431741147730128, 0.6449179367033329, 0.6466664866145447,
    0.6484197773255048, 0.6501778216898253, 0.6519406325959679, 0.6537082229673385,
    0.6554806057623822, 0.6572577939746774, 0.659039800633032, 0.6608266388015788,
    0.6626183215798706, 0.6644148621029772, 0.6662162735415805, 0.6680225691020727,
    0.6698337620266515, 0.6716498655934177, 0.6734708931164728, 0.6752968579460171,
    0.6771277734684463, 0.6789636531064505, 0.6808045103191123, 0.6826503586020058,
    0.6845012114872953, 0.6863570825438342, 0.688217985377265, 0.690083933630119,
    0.6919549409819159, 0.6938310211492645, 0.6957121878859629, 0.6975984549830999,
    0.6994898362691555, 0.7013863456101023, 0.7032879969095076, 0.7051948041086352,
    0.7071067811865475, 0.7090239421602076, 0.7109463010845827, 0.7128738720527471,
    0.7148066691959849, 0.7167447066838943, 0.718687998724491, 0.7206365595643126,
    0.7225904034885232, 0.7245495448210174, 0.7265139979245261, 0.7284837772007218,
    0.7304588970903234, 0.7324393720732029, 0.7344252166684908, 0.7364164454346837,
    0.7384130729697496, 0.7404151139112358, 0.7424225829363761, 0.7444354947621984,
    0.7464538641456323, 0.7484777058836176, 0.7505070348132126, 0.7525418658117031,
    0.7545822137967112, 0.7566280937263048, 0.7586795205991071, 0.7607365094544071,
    0.762799075372269, 0.7648672334736434, 0.7669409989204777, 0.7690203869158282,
    0.7711054127039704, 0.7731960915705107, 0.7752924388424999, 0.7773944698885442,
    0.7795022001189185, 0.7816156449856788, 0.7837348199827764, 0.7858597406461707,
    0.7879904225539431, 0.7901268813264122, 0.7922691326262467, 0.7944171921585818,
    0.7965710756711334, 0.7987307989543135, 0.8008963778413465, 0.8030678282083853,
    0.805245165974627, 0.8074284071024302, 0.8096175675974316, 0.8118126635086642,
    0.8140137109286738, 0.8162207259936375, 0.8184337248834821, 0.820652723822003,
    0.8228777390769823, 0.8251087869603088, 0.8273458838280969, 0.8295890460808079,
    0.8318382901633681, 0.8340936325652911, 0.8363550898207981, 0.8386226785089391,
    0.8408964152537144, 0.8431763167241966, 0.8454623996346523, 0.8477546807446661,
    0.8500531768592616, 0.8523579048290255, 0.8546688815502312, 0.8569861239649629,
    0.8593096490612387, 0.8616394738731368, 0.8639756154809185, 0.8663180910111553,
    0.8686669176368529, 0.871022112577578, 0.8733836930995842, 0.8757516765159389,
    0.8781260801866495, 0.8805069215187917, 0.8828942179666361, 0.8852879870317771,
    0.8876882462632604, 0.890095013257712, 0.8925083056594671, 0.8949281411607002,
    0.8973545375015533, 0.8997875124702672, 0.9022270839033115, 0.9046732696855155,
    0.9071260877501991, 0.909585556079304, 0.9120516927035263, 0.9145245157024483,
    0.9170040432046711, 0.9194902933879467, 0.9219832844793128, 0.9244830347552253,
    0.9269895625416926, 0.92950288621441, 0.9320230241988943, 0.9345499949706191,
    0.9370838170551498, 0.93962450902828, 0.9421720895161669, 0.9447265771954693,
    0.9472879907934827, 0.9498563490882775, 0.9524316709088368, 0.9550139751351947,
    0.9576032806985735, 0.9601996065815236, 0.9628029718180622, 0.9654133954938133,
    0.9680308967461471, 0.9706554947643201, 0.9732872087896164, 0.9759260581154889,
    0.9785720620876999, 0.9812252401044634, 0.9838856116165875, 0.9865531961276168,
    0.9892280131939752, 0.9919100824251095, 0.9945994234836328, 0.9972960560854698,
];

/// The lowest schema: bucket base 2^16.
pub const MIN_SCHEMA: i8 = -4;
/// The highest schema: bucket base 2^(1/256).
pub const MAX_SCHEMA: i8 = 8;
/// The key written for a value that belongs to the zero bucket.
pub const ZERO_BUCKET: i32 = i32::MIN;

/// The finest schema whose bucket growth factor `2^(2^-schema)` does not exceed
/// `factor`, clamped to the schemas there are; `None` unless `factor > 1`. This
/// is how Prometheus' Go client turns `NativeHistogramBucketFactor` into a schema.
pub fn schema_for_factor(factor: f64) -> Option<i8> {
    if factor.is_nan() || factor <= 1.0 {
        return None;
    }
    let floor = factor.log2().log2().floor();
    Some(if floor <= -f64::from(MAX_SCHEMA) {
        MAX_SCHEMA
    } else if floor >= -f64::from(MIN_SCHEMA) {
        MIN_SCHEMA
    } else {
        -(floor as i8)
    })
}

/// The exponent field of a double.
pub(super) const EXPONENT_MASK: u64 = 0x7ff << 52;
/// The mantissa field of a double.
pub(super) const MANTISSA_MASK: u64 = (1 << 52) - 1;
/// Exponent bits that make a mantissa into a `frac` in `[0.5, 1)`.
pub(super) const HALF_EXPONENT: u64 = 1022 << 52;

/// The bucket layout of one schema, with the tables the vector backends use.
#[derive(Debug)]
pub struct Layout {
    schema: i8,
    /// The octave's bounds `2^(j/2^s - 1)`, `j = 0..2^s`, for `s > 0`; empty otherwise.
    bounds: Box<[f64]>,
    /// Per mantissa cell (its top `s + 1` bits): the bounds below the cell's start.
    cell_below: Box<[i64]>,
    /// Per mantissa cell: the one bound inside the cell, or 1.0 (above every `frac`).
    cell_edge: Box<[f64]>,
}

impl Layout {
    /// The layout of `schema`, built once per schema and kept.
    ///
    /// # Panics
    /// When `schema` is outside `MIN_SCHEMA..=MAX_SCHEMA` (config validation
    /// keeps it inside).
    pub fn of(schema: i8) -> &'static Layout {
        assert!(
            (MIN_SCHEMA..=MAX_SCHEMA).contains(&schema),
            "native histogram schema {schema} outside {MIN_SCHEMA}..={MAX_SCHEMA}"
        );
        static LAYOUTS: [OnceLock<Layout>; (MAX_SCHEMA - MIN_SCHEMA + 1) as usize] =
            [const { OnceLock::new() }; (MAX_SCHEMA - MIN_SCHEMA + 1) as usize];
        LAYOUTS[(schema - MIN_SCHEMA) as usize].get_or_init(|| Layout::build(schema))
    }

    fn build(schema: i8) -> Layout {
        if schema <= 0 {
            return Layout {
                schema,
                bounds: Box::new([]),
                cell_below: Box::new([]),
                cell_edge: Box::new([]),
            };
        }
        let n = 1u32 << schema;
        let bounds: Box<[f64]> = SCHEMA_8_BOUNDS
            .iter()
            .step_by(1 << (MAX_SCHEMA - schema))
            .copied()
            .collect();
        let cells = 2 * n as usize;
        let width = 1.0 / (4 * n) as f64;
        let mut cell_below = Vec::with_capacity(cells);
        let mut cell_edge = Vec::with_capacity(cells);
        for t in 0..cells {
            let start = 0.5 + t as f64 * width;
            let below = bounds.partition_point(|&b| b < start);
            cell_below.push(below as i64);
            let inside = bounds.get(below).filter(|&&b| b < start + width);
            cell_edge.push(inside.copied().unwrap_or(1.0));
        }
        Layout {
            schema,
            bounds,
            cell_below: cell_below.into(),
            cell_edge: cell_edge.into(),
        }
    }

    /// The schema.
    pub fn schema(&self) -> i8 {
        self.schema
    }

    /// The octave's bounds `2^(j/2^s - 1)` (empty for schemas up to 0).
    pub fn octave_bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// Per mantissa cell, the octave bounds below it (vector backends' table).
    pub(super) fn cell_below(&self) -> &[i64] {
        &self.cell_below
    }

    /// Per mantissa cell, the bound inside it or 1.0 (vector backends' table).
    pub(super) fn cell_edge(&self) -> &[f64] {
        &self.cell_edge
    }

    /// The upper bound of bucket `key`: `base^key`, exactly as the octave table
    /// gives it (the lower bound is `upper_bound(key - 1)`).
    pub fn upper_bound(&self, key: i32) -> f64 {
        if self.schema <= 0 {
            return ldexp(1.0, i64::from(key) << -self.schema);
        }
        let n = self.bounds.len() as i64;
        let key = i64::from(key);
        let (octave, j) = (key.div_euclid(n), key.rem_euclid(n));
        // base^key = 2^(octave + j/n) = bounds[j] * 2^(octave + 1).
        ldexp(self.bounds[j as usize], octave + 1)
    }

    /// The bucket key of `v` (its sign ignored), or [`ZERO_BUCKET`] when `|v| <=
    /// zero_threshold` (or `v` is NaN), as Prometheus' Go client computes it:
    /// the scalar reference of [`super::Kernels::native_keys`].
    pub fn key(&self, v: f64, zero_threshold: f64) -> i32 {
        let magnitude = v.abs();
        if magnitude <= zero_threshold || magnitude.is_nan() {
            return ZERO_BUCKET;
        }
        // Infinities count one bucket above the largest finite value's.
        let (magnitude, above) = if magnitude.is_infinite() {
            (f64::MAX, 1)
        } else {
            (magnitude, 0)
        };
        let (frac, exp) = frexp(magnitude);
        let key = if self.schema > 0 {
            let below = self.bounds.partition_point(|&b| b < frac) as i64;
            below + (i64::from(exp) - 1) * self.bounds.len() as i64
        } else {
            let exp = i64::from(exp) - i64::from(frac == 0.5);
            (exp + (1 << -self.schema) - 1) >> -self.schema
        };
        (key + above) as i32
    }

    /// [`Layout::key`] by the cell tables instead of a search (the same
    /// answers, tested at every bucket edge): what the vector backends compute
    /// lane by lane, for one value at a time on a hot path.
    pub fn cell_key(&self, v: f64, zero_threshold: f64) -> i32 {
        let magnitude = v.abs();
        let bits = magnitude.to_bits();
        let biased = (bits & EXPONENT_MASK) >> 52;
        if self.schema <= 0
            || magnitude <= zero_threshold
            || magnitude.is_nan()
            || biased == 0
            || biased == 0x7ff
        {
            return self.key(v, zero_threshold);
        }
        let cell = ((bits & MANTISSA_MASK) >> (51 - self.schema as u32)) as usize;
        let frac = f64::from_bits(bits & MANTISSA_MASK | HALF_EXPONENT);
        let in_octave = self.cell_below[cell] + i64::from(self.cell_edge[cell] < frac);
        (in_octave + ((biased as i64 - 1023) << self.schema)) as i32
    }
}

/// `x * 2^exp` with one rounding (Go's `math.Ldexp`), for any integer `exp`.
fn ldexp(x: f64, exp: i64) -> f64 {
    // The first step stays in the normal range, so only the second rounds.
    let exp = exp.clamp(-2200, 2200) as i32;
    let first = exp.clamp(-600, 600);
    x * 2f64.powi(first) * 2f64.powi(exp - first)
}

/// `(frac, exp)` with `x = frac * 2^exp`, `frac` in `[0.5, 1)`, for finite `x > 0`
/// (Go's `math.Frexp`).
pub fn frexp(x: f64) -> (f64, i32) {
    let bits = x.to_bits();
    let biased = ((bits & EXPONENT_MASK) >> 52) as i32;
    if biased == 0 {
        // A subnormal: scale into the normal range first.
        let (frac, exp) = frexp(x * 2f64.powi(64));
        return (frac, exp - 64);
    }
    let frac = f64::from_bits(bits & !EXPONENT_MASK | HALF_EXPONENT);
    (frac, biased - 1022)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::Strategy;

    use super::*;

    #[test]
    fn bucket_factors_pick_the_schemas_the_go_client_picks() {
        assert_eq!(schema_for_factor(1.1), Some(3));
        assert_eq!(schema_for_factor(2.0), Some(0));
        assert_eq!(schema_for_factor(1.0001), Some(8));
        assert_eq!(schema_for_factor(1e10), Some(-4));
        assert_eq!(schema_for_factor(1.0), None);
        assert_eq!(schema_for_factor(f64::NAN), None);
    }

    #[test]
    fn the_table_is_within_a_few_units_of_the_powers_it_stands_for() {
        for (j, &bound) in SCHEMA_8_BOUNDS.iter().enumerate() {
            let power = (j as f64 / 256.0 - 1.0).exp2();
            assert!(
                (bound - power).abs() <= 4.0 * f64::EPSILON * power,
                "bound {j}: {bound} vs {power}"
            );
        }
        assert!(SCHEMA_8_BOUNDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn lower_schemas_take_every_other_bound_as_prometheus_lists_them() {
        // Prometheus' published tables (client_golang, nativeHistogramBounds).
        assert_eq!(Layout::of(1).octave_bounds(), [0.5, 0.7071067811865475]);
        assert_eq!(
            Layout::of(2).octave_bounds(),
            [
                0.5,
                0.5946035575013605,
                0.7071067811865475,
                0.8408964152537144
            ]
        );
        assert_eq!(
            Layout::of(3).octave_bounds(),
            [
                0.5,
                0.5452538663326288,
                0.5946035575013605,
                0.6484197773255048,
                0.7071067811865475,
                0.7711054127039704,
                0.8408964152537144,
                0.9170040432046711,
            ]
        );
    }

    #[test]
    fn frexp_matches_go_on_normals_subnormals_and_powers_of_two() {
        assert_eq!(frexp(1.0), (0.5, 1));
        assert_eq!(frexp(8.0), (0.5, 4));
        assert_eq!(frexp(0.75), (0.75, 0));
        assert_eq!(frexp(f64::MAX), (1.0f64.next_down(), 1024));
        let tiny = f64::from_bits(1);
        assert_eq!(frexp(tiny), (0.5, -1073));
        assert_eq!(frexp(3.0 * tiny), (0.75, -1072));
    }

    #[test]
    fn the_cell_tables_agree_with_the_search_at_every_edge() {
        for schema in 1..=MAX_SCHEMA {
            let layout = Layout::of(schema);
            for &bound in layout.octave_bounds() {
                for v in [
                    bound,
                    bound.next_up(),
                    bound.next_down(),
                    3.0 * bound,
                    -bound / 7.0,
                ] {
                    assert_eq!(
                        layout.cell_key(v, 0.0),
                        layout.key(v, 0.0),
                        "schema {schema}, {v}"
                    );
                }
            }
        }
    }

    /// Expected keys worked out by hand from the definition `base^(k-1) < |v| <= base^k`.
    #[test]
    fn keys_match_a_table_worked_from_the_definition() {
        let table: &[(i8, f64, i32)] = &[
            (3, 1.0, 0),
            (3, 1.0f64.next_up(), 1),
            (3, 2.0, 8),
            (3, 2.0f64.next_up(), 9),
            (3, 0.5, -8),
            (3, 2.0 * 0.5452538663326288, 1), // 2^(1/8) as the table has it
            (3, (2.0 * 0.5452538663326288f64).next_up(), 2),
            (3, 3.0, 13), // 2^(12/8) = 2.83 < 3 <= 2^(13/8) = 3.08
            (3, -3.0, 13),
            (3, 1e-300, -7972),
            (1, 1.5, 2), // 2^(1/2) = 1.41 < 1.5 <= 2
            (1, 2.0 * 0.7071067811865475, 1),
            // The table's 2^(1/2) is one unit below the double nearest to it.
            (1, std::f64::consts::SQRT_2, 2),
            (0, 1.0, 0),
            (0, 3.0, 2),
            (0, 4.0, 2),
            (0, 4.5, 3),
            (0, 0.5, -1),
            (0, 0.3, -1),
            (-1, 4.0, 1),
            (-1, 5.0, 2),
            (-1, 0.25, -1),
            (-1, 0.2, -1),
            (-1, 0.0625, -2), // 4^-2 exactly: a floor, not a truncation
            (-1, 0.07, -1),
            (-2, 16.0, 1),
            (-2, 17.0, 2),
            (-4, 65536.0, 1),
            (-4, 1.0, 0),
            (-4, 1e-5, -1), // (2^-32, 2^-16]
            (8, 1.0, 0),
            (8, 2.0, 256),
            (3, f64::MAX, 8192),
            (3, f64::INFINITY, 8193),
            (3, f64::from_bits(1), -8592),
        ];
        for &(schema, v, expected) in table {
            assert_eq!(
                Layout::of(schema).key(v, 0.0),
                expected,
                "schema {schema}, value {v}"
            );
        }
    }

    #[test]
    fn zeros_and_the_threshold_give_the_zero_bucket() {
        let layout = Layout::of(3);
        assert_eq!(layout.key(0.0, 0.0), ZERO_BUCKET);
        assert_eq!(layout.key(-0.0, 0.0), ZERO_BUCKET);
        assert_eq!(layout.key(f64::NAN, 0.0), ZERO_BUCKET);
        assert_eq!(layout.key(0.001, 0.001), ZERO_BUCKET);
        assert_eq!(layout.key(-0.001, 0.001), ZERO_BUCKET);
        assert_ne!(layout.key(0.0011, 0.001), ZERO_BUCKET);
        assert_eq!(layout.key(f64::from_bits(1), 0.0), -8592);
    }

    #[test]
    fn every_bucket_edge_closes_its_bucket_for_every_schema() {
        for schema in MIN_SCHEMA..=MAX_SCHEMA {
            let layout = Layout::of(schema);
            let per_octave = 1i32 << schema.max(0);
            let span = 40 * per_octave;
            for key in (-span..=span).chain([-1021 * per_octave, 1000 * per_octave]) {
                let edge = layout.upper_bound(key);
                // Subnormal edges round, so they are not where keys change.
                if edge < f64::MIN_POSITIVE || edge.is_infinite() {
                    continue;
                }
                for sign in [1.0, -1.0] {
                    let v = sign * edge;
                    assert_eq!(layout.key(v, 0.0), key, "schema {schema}, edge {v}");
                    assert_eq!(
                        layout.key(sign * edge.next_up(), 0.0),
                        key + 1,
                        "schema {schema}, above {v}"
                    );
                    let below = sign * edge.next_down();
                    assert_eq!(layout.key(below, 0.0), key, "schema {schema}, below {v}");
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// The key's bucket holds the value: `base^(k-1) < |v| <= base^k`.
        #[test]
        fn the_key_names_the_bucket_that_holds_the_value(
            schema in MIN_SCHEMA..=MAX_SCHEMA,
            v in proptest::prop_oneof![
                -1e6f64..1e6,
                (1u64..0x7ff0_0000_0000_0000).prop_map(f64::from_bits),
                (1u64..1 << 52).prop_map(f64::from_bits),
            ],
        ) {
            let layout = Layout::of(schema);
            let key = layout.key(v, 0.0);
            if v == 0.0 {
                proptest::prop_assert_eq!(key, ZERO_BUCKET);
            } else {
                let (lower, upper) = (layout.upper_bound(key - 1), layout.upper_bound(key));
                proptest::prop_assert!(lower < v.abs() && v.abs() <= upper, "{} not in ({}, {}] (key {})", v, lower, upper, key);
            }
        }
    }
}
