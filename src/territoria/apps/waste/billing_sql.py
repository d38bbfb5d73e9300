"""The billing run's SQL: contract facts, blocking anomalies, then one SELECT per kind of line.

A *contract* is what the fixed part and the included lifts are counted on: one payer, one
service (``bac`` or ``badge``), one bin and one volume. A lost tag (same bin, new tag) stays the
same contract; a bin swap (new bin, new volume) starts a new one. Units are days or months of
activity, clipped to the fixed window (the billing period) and to the count window (the period,
or the civil year when the variable part is settled on the year's last bill).

Parameters (``$name``) are bound by :func:`territoria.apps.waste.sql.run_script`.
"""

from __future__ import annotations

FACTS = """
CREATE OR REPLACE TEMP TABLE payers AS
SELECT payer, any_value(category) AS category, any_value(household_size) AS household_size,
       any_value(income_decile) AS income_decile, any_value(exemption) AS exemption,
       any_value(tax_base) AS tax_base, count(*) AS n
FROM in_payers GROUP BY payer;

CREATE OR REPLACE TEMP TABLE contract_events AS
SELECT cid, count(*) AS counted, sum(coalesce(w, 0)) AS kg,
       count(*) FILTER (WHERE w IS NULL) AS unweighed
FROM matched WHERE cid IS NOT NULL GROUP BY cid;

CREATE OR REPLACE TEMP TABLE contract_alloc AS
SELECT cid, contract, payer, service, bin_id, volume_l,
       string_agg(allocation_id, ', ' ORDER BY start_date) AS allocations,
       sum(clip_days(start_date, end_date, $flo, $fhi)) AS f_days,
       sum(clip_months(start_date, end_date, $flo, $fhi)) AS f_months,
       sum(clip_days(start_date, end_date, $clo, $chi)) AS c_days,
       sum(clip_months(start_date, end_date, $clo, $chi)) AS c_months
FROM alloc
WHERE start_date < $hhi AND (end_date IS NULL OR end_date > $hlo)
GROUP BY cid, contract, payer, service, bin_id, volume_l;

CREATE OR REPLACE TEMP TABLE facts AS
SELECT c.*,
       units(c.f_days, c.f_months, $policy, $fdays, $fmonths) AS f_units,
       CASE WHEN $inc_mode = 'full' OR $policy = 'none'
            THEN CASE WHEN c.c_days > 0 THEN $ctotal ELSE 0 END
            ELSE units(c.c_days, c.c_months, $policy, $cdays, $cmonths) END AS c_units,
       coalesce(e.counted, 0) AS counted, coalesce(e.kg, 0) AS kg,
       coalesce(e.unweighed, 0) AS unweighed,
       coalesce(p.category, $default_category) AS category,
       p.household_size, p.exemption, p.tax_base, coalesce(p.n, 0) AS payer_rows,
       g.basis, g.per_kg, g.per_kg_label, g.included_kg, g.opening_cents,
       b.annual_cents, b.share_cents, b.included, b.extra_cents, b.minimum, b.rate_label
FROM contract_alloc c
LEFT JOIN contract_events e USING (cid)
LEFT JOIN payers p USING (payer)
LEFT JOIN g_cat g ON g.category = coalesce(p.category, $default_category)
LEFT JOIN g_bins b ON b.category = g.category AND b.volume_l = c.volume_l AND c.service = 'bac'
WHERE c.f_days > 0 OR c.c_days > 0;
"""

BLOCKING = """
INSERT INTO anomalies
SELECT DISTINCT 'redevable', payer, payer, NULL::TIMESTAMP, reason, detail FROM (
    SELECT payer, 'categorie_inconnue' AS reason,
           'catégorie « ' || category || ' » absente de la grille' AS detail
    FROM facts WHERE basis IS NULL
    UNION ALL
    SELECT payer, 'redevable_en_double', 'redevable présent ' || payer_rows
           || ' fois dans la table des redevables'
    FROM facts WHERE payer_rows > 1
    UNION ALL
    SELECT payer, 'service_inconnu', 'service « ' || service || ' » inconnu (bac ou badge attendu)'
    FROM facts WHERE service NOT IN ('bac', 'badge')
    UNION ALL
    SELECT payer, 'volume_hors_grille', 'bac ' || bin_id || ' de ' || volume_l
           || ' L : volume absent de la grille (catégorie ' || category || ')'
    FROM facts WHERE service = 'bac' AND basis IS NOT NULL AND annual_cents IS NULL
    UNION ALL
    SELECT payer, 'ouvertures_non_tarifees', 'badge ' || bin_id
           || ' : la grille ne tarife pas les ouvertures de colonne (catégorie ' || category || ')'
    FROM facts WHERE service = 'badge' AND basis IS NOT NULL AND opening_cents IS NULL
    UNION ALL
    SELECT payer, 'taille_foyer_inconnue', 'part fixe selon la taille du foyer, taille inconnue'
    FROM facts WHERE basis = 'household_size' AND household_size IS NULL
    UNION ALL
    SELECT f.payer, 'tranche_introuvable', 'aucune tranche pour un foyer de '
           || f.household_size || ' personne(s)'
    FROM facts f WHERE f.basis = 'household_size' AND f.household_size IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM g_bands d WHERE d.category = f.category
                      AND f.household_size BETWEEN d.min_p AND coalesce(d.max_p, 100000))
    UNION ALL
    SELECT payer, 'base_imposition_inconnue', 'TEOMi : base d''imposition inconnue'
    FROM facts WHERE basis = 'tax_base' AND tax_base IS NULL
    UNION ALL
    SELECT payer, 'exoneration_inconnue', 'exonération « ' || exemption || ' » absente de la grille'
    FROM facts WHERE exemption IS NOT NULL AND exemption NOT IN (SELECT code FROM g_exempt)
);

CREATE OR REPLACE TEMP TABLE held AS
SELECT DISTINCT ref AS payer FROM anomalies WHERE level = 'redevable';

CREATE OR REPLACE TEMP TABLE bf AS
SELECT f.*,
       rdiv(f.included * f.c_units, $k * $ctotal, $inc_round) AS inc_eff,
       rdiv(f.minimum * f.c_units, $k * $ctotal, $inc_round) AS min_eff,
       CAST(f.included_kg * f.c_units / ($k * $ctotal) AS DECIMAL(14, 3)) AS kg_inc
FROM facts f ANTI JOIN held h USING (payer);

CREATE OR REPLACE TEMP TABLE pf AS
SELECT f.payer, any_value(f.category) AS category, any_value(f.basis) AS basis,
       any_value(f.household_size) AS household_size, any_value(f.exemption) AS exemption,
       any_value(f.tax_base) AS tax_base, max(f.f_units) AS f_units,
       max(f.f_units) FILTER (WHERE f.service = 'badge') AS badge_f_units,
       max(f.c_units) FILTER (WHERE f.service = 'badge') AS badge_c_units,
       bool_or(f.service = 'bac') AS has_bin, bool_or(f.service = 'badge') AS has_badge,
       sum(f.counted) FILTER (WHERE f.service = 'badge') AS openings,
       string_agg(f.bin_id, ', ') FILTER (WHERE f.service = 'badge') AS badges
FROM bf f GROUP BY f.payer;
"""

_FIXED_TAIL = """
    || CASE WHEN $cnt > 1 THEN ' ; part du ' || $period_title || ' (' || $share_label || ') : '
            || eur({share}) ELSE '' END
    || CASE WHEN {units} < $ftotal
            THEN ' ; présence ' || {units} || ' ' || $unit_name || ' sur ' || $ftotal || ' : '
                 || eur({share}) || ' × ' || {units} || '/' || $ftotal || ' = ' || eur({amount})
            ELSE ' ; présence toute la période' END
"""


def _fixed_tail(share: str, units: str, amount: str) -> str:
    return _FIXED_TAIL.format(share=share, units=units, amount=amount)


LINES = (
    """
CREATE OR REPLACE TEMP TABLE lines_raw (
    payer VARCHAR, ord INTEGER, kind VARCHAR, contract VARCHAR, label VARCHAR,
    quantity DECIMAL(14, 3), unit VARCHAR, unit_price_cents BIGINT, amount_cents BIGINT,
    rule VARCHAR, explanation VARCHAR
);

INSERT INTO lines_raw
SELECT payer, 1, 'part_fixe', contract, 'Abonnement bac ' || volume_l || ' L (' || bin_id || ')',
       NULL, NULL, NULL, amount,
       $grid_id || ' · ' || category || ' · ' || rate_label || ' · part fixe',
       'Abonnement annuel du ' || rate_label || ' : ' || eur(annual_cents)
"""
    + _fixed_tail("share_cents", "f_units", "amount")
    + """
       || ' (dotations ' || allocations || ')'
FROM (SELECT *, rdiv(share_cents * f_units, $ftotal, $money_round) AS amount FROM bf)
WHERE service = 'bac' AND basis = 'bin_volume' AND f_units > 0;

INSERT INTO lines_raw
SELECT payer, 3, 'levees', contract,
       CASE WHEN minimum > 0 THEN 'Levées facturées' ELSE 'Levées au-delà du forfait' END
       || ', bac ' || volume_l || ' L (' || bin_id || ')',
       extra, 'levée', extra_cents, extra * coalesce(extra_cents, 0),
       $grid_id || ' · ' || category || ' · ' || rate_label || ' · levée supplémentaire',
       counted || CASE WHEN counted > 1 THEN ' levées comptées ' ELSE ' levée comptée ' END
       || $count_label || ' ; ' || inc_eff
       || CASE WHEN inc_eff > 1 THEN ' incluses' ELSE ' incluse' END || ' dans l''abonnement'
       || CASE WHEN included > 0 AND c_units < $k * $ctotal
               THEN ' (' || included || ' par an × ' || c_units || '/' || ($k * $ctotal) || ')'
               ELSE '' END
       || CASE WHEN min_eff > counted THEN ' ; minimum facturé : ' || min_eff || ' levées'
               ELSE '' END
       || CASE WHEN extra_cents IS NULL THEN ' ; levées supplémentaires non tarifées par la grille'
               ELSE ' ; ' || extra || ' × ' || eur(extra_cents) || ' = '
                    || eur(extra * extra_cents) END
FROM (SELECT *, greatest(greatest(counted, min_eff) - inc_eff, 0) AS extra FROM bf)
WHERE service = 'bac' AND $has_count AND c_units > 0;

INSERT INTO lines_raw
SELECT payer, 4, 'poids', contract, 'Poids des levées, bac ' || volume_l || ' L (' || bin_id || ')',
       kg_bill, 'kg', NULL, amount,
       $grid_id || ' · ' || category || ' · prix au kg',
       dec_fr(kg) || ' kg pesés sur ' || counted || ' levée(s)'
       || CASE WHEN unweighed > 0 THEN ' dont ' || unweighed || ' sans pesée (comptée 0 kg)'
               ELSE '' END
       || CASE WHEN kg_inc > 0 THEN ' ; ' || dec_fr(kg_inc) || ' kg inclus' ELSE '' END
       || ' ; ' || dec_fr(kg_bill) || ' kg × ' || per_kg_label || '/kg = ' || eur(amount)
FROM (
    SELECT *, CAST(CASE WHEN $money_round = 'down' THEN floor(kg_bill * per_kg * 100)
                        ELSE round(kg_bill * per_kg * 100) END AS BIGINT) AS amount
    FROM (SELECT *, CAST(greatest(kg - kg_inc, 0) AS DECIMAL(14, 3)) AS kg_bill FROM bf)
)
WHERE service = 'bac' AND per_kg IS NOT NULL AND $has_count AND c_units > 0;

INSERT INTO lines_raw
SELECT payer, 0, 'abonnement', NULL, 'Abonnement au service (par redevable)', NULL, NULL, NULL,
       amount, $grid_id || ' · ' || category || ' · abonnement',
       'Abonnement annuel par redevable : ' || eur(subscription_annual)
"""
    + _fixed_tail("subscription_share", "f_units", "amount")
    + """
FROM (SELECT p.*, g.subscription_annual, g.subscription_share,
             rdiv(g.subscription_share * p.f_units, $ftotal, $money_round) AS amount
      FROM pf p JOIN g_cat g USING (category))
WHERE subscription_annual > 0 AND f_units > 0;

INSERT INTO lines_raw
SELECT payer, 1, 'forfait_foyer', NULL, 'Forfait foyer (' || band_label || ')', NULL, NULL, NULL,
       amount, $grid_id || ' · ' || category || ' · forfait ' || band_label,
       'Forfait annuel d''un foyer de ' || household_size || ' personne(s) (' || band_label
       || ') : ' || eur(annual_cents)
"""
    + _fixed_tail("share_cents", "f_units", "amount")
    + """
FROM (SELECT p.*, d.band_label, d.annual_cents, d.share_cents,
             rdiv(d.share_cents * p.f_units, $ftotal, $money_round) AS amount
      FROM pf p JOIN g_bands d ON d.category = p.category
       AND p.household_size BETWEEN d.min_p AND coalesce(d.max_p, 100000))
WHERE basis = 'household_size' AND f_units > 0;

INSERT INTO lines_raw
SELECT payer, 2, 'sans_bac', NULL, 'Abonnement usager sans bac (colonnes)', NULL, NULL, NULL,
       amount, $grid_id || ' · ' || category || ' · règle « sans bac »',
       'Usager sans bac : abonnement du bac de ' || nobin_volume || ' L, '
       || eur(nobin_annual) || ' par an'
"""
    + _fixed_tail("nobin_share", "badge_f_units", "amount")
    + """
FROM (SELECT p.*, g.nobin_volume, g.nobin_annual, g.nobin_share,
             rdiv(g.nobin_share * p.badge_f_units, $ftotal, $money_round) AS amount
      FROM pf p JOIN g_cat g USING (category))
WHERE basis = 'bin_volume' AND NOT has_bin AND has_badge AND nobin_share IS NOT NULL
  AND badge_f_units > 0;

INSERT INTO lines_raw
SELECT payer, 1, 'teom', NULL, 'TEOM, part fixe (base d''imposition)', NULL, NULL, NULL,
       amount, $grid_id || ' · ' || category || ' · TEOM part fixe',
       'Base d''imposition ' || eur(base_cents) || ' × taux ' || $teom_rate_label || ' = '
       || eur(annual)
"""
    + _fixed_tail("share", "f_units", "amount")
    + """
FROM (
    SELECT *, rdiv(share * f_units, $ftotal, $money_round) AS amount FROM (
        SELECT *, rdiv(annual * $idx, $cnt, $money_round)
                  - rdiv(annual * ($idx - 1), $cnt, $money_round) AS share FROM (
            SELECT p.*, CAST(round(p.tax_base * 100) AS BIGINT) AS base_cents,
                   CAST(CASE WHEN $money_round = 'down'
                             THEN floor(p.tax_base * $teom_rate * 100)
                             ELSE round(p.tax_base * $teom_rate * 100) END AS BIGINT) AS annual
            FROM pf p WHERE p.basis = 'tax_base')))
WHERE f_units > 0;

CREATE OR REPLACE TEMP TABLE op AS
SELECT *, greatest(openings - inc_eff, 0) AS extra FROM (
    SELECT *, rdiv(base_inc * badge_c_units, $k * $ctotal, $inc_round) AS inc_eff FROM (
        SELECT p.*, g.opening_cents,
               CASE WHEN p.basis = 'household_size' THEN coalesce(d.included, 0)
                    WHEN NOT p.has_bin AND g.nobin_included IS NOT NULL THEN g.nobin_included
                    ELSE g.opening_included END AS base_inc
        FROM pf p JOIN g_cat g USING (category)
        LEFT JOIN g_bands d ON d.category = p.category
         AND p.household_size BETWEEN d.min_p AND coalesce(d.max_p, 100000)
        WHERE p.has_badge));

INSERT INTO lines_raw
SELECT payer, 5, 'ouvertures', NULL, 'Ouvertures de colonne (' || badges || ')', extra, 'ouverture',
       opening_cents, extra * opening_cents, $grid_id || ' · ' || category || ' · ouverture',
       openings || ' ouverture(s) comptée(s) ' || $count_label || ' ; ' || inc_eff
       || ' incluse(s)'
       || CASE WHEN base_inc > 0 AND badge_c_units < $k * $ctotal
               THEN ' (' || base_inc || ' par an × ' || badge_c_units || '/' || ($k * $ctotal) || ')'
               ELSE '' END
       || ' ; ' || extra || ' × ' || eur(opening_cents) || ' = ' || eur(extra * opening_cents)
FROM op
WHERE $has_count AND badge_c_units > 0;

INSERT INTO lines_raw
SELECT l.payer, 8, 'exoneration', NULL, 'Exonération : ' || x.label, NULL, NULL, NULL,
       -sum(l.amount_cents), $grid_id || ' · exonération ' || x.code,
       'Exonération « ' || x.label || ' » (' || x.reference || ') : '
       || CASE WHEN x.waives_fixed AND x.waives_variable THEN 'parts fixe et variable'
               WHEN x.waives_fixed THEN 'part fixe' ELSE 'part variable' END
       || ' remises, soit ' || eur(-sum(l.amount_cents))
FROM lines_raw l JOIN pf p USING (payer) JOIN g_exempt x ON x.code = p.exemption
WHERE (x.waives_fixed AND l.kind IN ('part_fixe', 'abonnement', 'forfait_foyer', 'sans_bac', 'teom'))
   OR (x.waives_variable AND l.kind IN ('levees', 'poids', 'ouvertures'))
GROUP BY l.payer, x.code, x.label, x.reference, x.waives_fixed, x.waives_variable;

INSERT INTO lines_raw
SELECT payer, 9, 'correction', reference, label, NULL, NULL, NULL, amount_cents,
       'correction · ' || reference, explanation
FROM in_corrections ANTI JOIN held USING (payer);

CREATE OR REPLACE TEMP TABLE lines AS
SELECT payer,
       CAST(row_number() OVER (PARTITION BY payer ORDER BY ord, contract NULLS FIRST, kind) AS INTEGER)
           AS line_no,
       kind, label, contract, quantity, unit, unit_price_cents, amount_cents, rule, explanation
FROM lines_raw;

CREATE OR REPLACE TEMP TABLE bills AS
SELECT payer, CAST(total_cents AS BIGINT) AS total_cents, line_count,
       CAST(coalesce(fixed_cents_raw, 0) AS BIGINT) AS fixed_cents,
       CAST(coalesce(variable_cents_raw, 0) AS BIGINT) AS variable_cents
FROM (
SELECT payer, sum(amount_cents) AS total_cents, CAST(count(*) AS INTEGER) AS line_count,
       sum(amount_cents) FILTER (WHERE kind IN ('part_fixe', 'abonnement', 'forfait_foyer',
                                                'sans_bac', 'teom')) AS fixed_cents_raw,
       sum(amount_cents) FILTER (WHERE kind IN ('levees', 'poids', 'ouvertures'))
           AS variable_cents_raw
FROM lines GROUP BY payer);
"""
)
