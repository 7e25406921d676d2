/* oir serve: the page. Plain JavaScript, no libraries, nothing from the
 * network but this server's own API (README "The web editor"). */
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const COLORS = ['#ff2bd6', '#00e5ff', '#ffea00', '#76ff03', '#ff6d00', '#7c4dff', '#ffffff', '#000000'];
  const MASK_MAX_SIDE = 768; /* painting resolution: the crop, at most this many pixels a side */
  const FINISHED = ['done', 'failed', 'cancelled'];

  const st = {
    info: null,
    file: null, img: null, photoW: 0, photoH: 0, ww: 0, wh: 0, crop: null, mW: 0, mH: 0,
    pairs: [], active: 0, tool: 'brush',
    stroke: null, box: null,
    job: null, es: null, status: null, showBefore: false, busy: false,
  };

  /* ---------------------------------------------------------- helpers */

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k) e.append(k);
    return e;
  }

  function showError(msg) {
    const e = $('error');
    e.textContent = msg;
    e.hidden = !msg;
  }

  async function errorText(res) {
    try {
      const j = await res.json();
      return j.error || `HTTP ${res.status}`;
    } catch (_) {
      return `HTTP ${res.status}`;
    }
  }

  /* The working size and crop of a photo, as the engine computes them
   * (src/io/image_fit.c: image_fit_size, image_fit_plan). */
  function fitSize(pw, ph, side, m) {
    const lo = Math.min(pw, ph), hi = Math.max(pw, ph);
    let q = Math.floor((2 * side * lo + hi * m) / (2 * hi * m));
    if (q < 1) q = 1;
    const s = Math.min(q * m, side);
    return pw >= ph ? [side, s] : [s, side];
  }

  function fitPlan(pw, ph, ww, wh) {
    let cw, ch;
    if (pw * wh > ph * ww) {
      ch = ph;
      cw = Math.floor((2 * ph * ww + wh) / (2 * wh));
    } else {
      cw = pw;
      ch = Math.floor((2 * pw * wh + ww) / (2 * ww));
    }
    cw = Math.min(Math.max(cw, 1), pw);
    ch = Math.min(Math.max(ch, 1), ph);
    return { x: Math.floor((pw - cw) / 2), y: Math.floor((ph - ch) / 2), w: cw, h: ch };
  }

  /* ---------------------------------------------------------- the photo */

  /* The EXIF orientation of a JPEG (1..8; 1 when none): browsers rotate
   * such photos when decoding, oir does not (as Pillow's Image.open and
   * oir edit), so the page turns them back to the pixels the engine reads. */
  function exifOrientation(buf) {
    const b = new DataView(buf);
    if (b.byteLength < 4 || b.getUint16(0) !== 0xffd8) return 1;
    let i = 2;
    while (i + 4 <= b.byteLength) {
      if (b.getUint8(i) !== 0xff) return 1;
      const m = b.getUint8(i + 1), len = b.getUint16(i + 2);
      if (m === 0xda || m === 0xd9) return 1;
      if (m === 0xe1 && i + 10 <= b.byteLength && b.getUint32(i + 4) === 0x45786966) { /* "Exif" */
        const t = i + 10, le = b.getUint16(t) === 0x4949;
        if (t + 8 > b.byteLength) return 1;
        const ifd = t + b.getUint32(t + 4, le);
        if (ifd + 2 > b.byteLength) return 1;
        const n = b.getUint16(ifd, le);
        for (let k = 0; k < n; k++) {
          const e = ifd + 2 + 12 * k;
          if (e + 12 > b.byteLength) return 1;
          if (b.getUint16(e, le) === 0x0112) {
            const o = b.getUint16(e + 8, le);
            return o >= 1 && o <= 8 ? o : 1;
          }
        }
        return 1;
      }
      i += 2 + len;
    }
    return 1;
  }

  /* The browser's upright bitmap back to the file's own pixel layout:
   * orientation o's inverse (6 and 8 swap, the others undo themselves). */
  async function unrotate(bmp, o) {
    const k = o === 6 ? 8 : o === 8 ? 6 : o;
    const w = bmp.width, h = bmp.height, swap = k >= 5;
    const c = document.createElement('canvas');
    c.width = swap ? h : w;
    c.height = swap ? w : h;
    const ctx = c.getContext('2d');
    const t = {
      2: [-1, 0, 0, 1, w, 0], 3: [-1, 0, 0, -1, w, h], 4: [1, 0, 0, -1, 0, h], 5: [0, 1, 1, 0, 0, 0],
      6: [0, 1, -1, 0, h, 0], 7: [0, -1, -1, 0, h, w], 8: [0, -1, 1, 0, 0, w],
    }[k];
    ctx.setTransform(...t);
    ctx.drawImage(bmp, 0, 0);
    return createImageBitmap(c);
  }

  async function openFile(file) {
    showError('');
    if (!file) return;
    if (!/^image\/(png|jpeg)$/.test(file.type)) {
      showError(`${file.name}: only PNG and JPEG photos are accepted`);
      return;
    }
    const max = st.info ? st.info.limits.max_upload_bytes : Infinity;
    if (file.size > max) {
      showError(`${file.name} is ${file.size} bytes; this server takes at most ${max}`);
      return;
    }
    let img, orientation = 1;
    try {
      orientation = exifOrientation(await file.slice(0, 256 * 1024).arrayBuffer());
      img = await createImageBitmap(file);
      if (orientation !== 1) img = await unrotate(img, orientation);
    } catch (e) {
      showError(`${file.name}: the browser cannot decode it`);
      return;
    }
    if (st.info && img.width * img.height > st.info.limits.max_pixels) {
      showError(`${file.name} is ${img.width}x${img.height}: more than the server's ${st.info.limits.max_pixels} pixels`);
      return;
    }
    st.file = file;
    st.img = img;
    if (st.photoUrl && st.photoUrl !== st.runPhotoUrl) URL.revokeObjectURL(st.photoUrl);
    st.photoUrl = null;
    st.photoW = img.width;
    st.photoH = img.height;
    const side = st.info.image_size, m = st.info.size_multiple;
    [st.ww, st.wh] = fitSize(st.photoW, st.photoH, side, m);
    st.crop = fitPlan(st.photoW, st.photoH, st.ww, st.wh);
    const s = Math.min(1, MASK_MAX_SIDE / Math.max(st.crop.w, st.crop.h));
    st.mW = Math.max(1, Math.round(st.crop.w * s));
    st.mH = Math.max(1, Math.round(st.crop.h * s));
    const photo = $('photo');
    photo.width = st.ww;
    photo.height = st.wh;
    const ctx = photo.getContext('2d');
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(img, st.crop.x, st.crop.y, st.crop.w, st.crop.h, 0, 0, st.ww, st.wh);
    const ov = $('overlay');
    ov.width = st.mW;
    ov.height = st.mH;
    for (const p of st.pairs) newMask(p);
    $('stage').hidden = false;
    $('tools').hidden = false;
    const cropped = st.crop.w !== st.photoW || st.crop.h !== st.photoH;
    $('geometry').textContent = `${file.name}: ${st.photoW}x${st.photoH}, worked on at ${st.ww}x${st.wh}` +
      (cropped ? ` (the centred ${st.crop.w}x${st.crop.h} region, as shown)` : '') +
      (orientation !== 1 ? `; its EXIF rotation (${orientation}) is not applied: oir reads the pixels as stored` : '');
    drawOverlay();
    updateRun();
  }

  /* ---------------------------------------------------------- pairs and masks */

  function newMask(p) {
    p.canvas = document.createElement('canvas');
    p.canvas.width = Math.max(1, st.mW);
    p.canvas.height = Math.max(1, st.mH);
    p.painted = false;
  }

  function addPair(from, to) {
    const i = st.pairs.length;
    if (st.info && i >= st.info.limits.max_pairs) return;
    const p = { color: COLORS[i % COLORS.length], mode: 'paint' };
    newMask(p);
    const fromIn = el('input', { type: 'text', class: 'from', placeholder: 'from (a phrase of the prompt)', autocomplete: 'off' });
    const toIn = el('input', { type: 'text', class: 'to', placeholder: 'to', autocomplete: 'off' });
    fromIn.value = from || '';
    toIn.value = to || '';
    const mode = el('select', { class: 'mode', title: 'how this pair\'s mask is given' },
      el('option', { value: 'paint', text: 'paint / box' }), el('option', { value: 'auto', text: 'auto mask' }));
    const swatch = el('span', { class: 'swatch' });
    swatch.style.background = p.color;
    const remove = el('button', { type: 'button', class: 'remove', text: 'Remove', title: 'remove this pair' });
    const row = el('div', { class: 'pair' }, swatch, fromIn, el('span', { class: 'arrow', text: '→' }), toIn, mode, remove);
    row.style.borderLeftColor = p.color;
    p.row = row;
    p.fromIn = fromIn;
    p.toIn = toIn;
    p.modeSel = mode;
    row.addEventListener('pointerdown', () => setActive(st.pairs.indexOf(p)));
    row.addEventListener('focusin', () => setActive(st.pairs.indexOf(p)));
    mode.addEventListener('change', () => { p.mode = mode.value; drawOverlay(); updateRun(); });
    fromIn.addEventListener('input', updateRun);
    toIn.addEventListener('input', updateRun);
    remove.addEventListener('click', (ev) => {
      ev.stopPropagation();
      if (st.pairs.length <= 1) return;
      const k = st.pairs.indexOf(p);
      st.pairs.splice(k, 1);
      row.remove();
      setActive(Math.min(st.active, st.pairs.length - 1));
      updateRun();
    });
    st.pairs.push(p);
    $('pairs').append(row);
    setActive(i);
    updateRun();
  }

  function setActive(i) {
    if (i < 0) return;
    st.active = i;
    st.pairs.forEach((p, k) => p.row.classList.toggle('active', k === i));
    drawOverlay();
  }

  function drawOverlay() {
    const ov = $('overlay');
    const ctx = ov.getContext('2d');
    ctx.clearRect(0, 0, ov.width, ov.height);
    const tint = document.createElement('canvas');
    tint.width = ov.width;
    tint.height = ov.height;
    const t = tint.getContext('2d');
    st.pairs.forEach((p, k) => {
      if (p.mode !== 'paint' || !p.canvas) return;
      t.globalCompositeOperation = 'source-over';
      t.clearRect(0, 0, tint.width, tint.height);
      t.fillStyle = p.color;
      t.fillRect(0, 0, tint.width, tint.height);
      t.globalCompositeOperation = 'destination-in';
      t.drawImage(p.canvas, 0, 0);
      ctx.globalAlpha = k === st.active ? 0.55 : 0.3;
      ctx.drawImage(tint, 0, 0);
    });
    ctx.globalAlpha = 1;
    if (st.box) {
      const b = st.box;
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = Math.max(1, ov.width / 256);
      ctx.strokeRect(Math.min(b.x0, b.x1), Math.min(b.y0, b.y1), Math.abs(b.x1 - b.x0), Math.abs(b.y1 - b.y0));
    }
  }

  function maskPoint(ev) {
    const r = $('overlay').getBoundingClientRect();
    return { x: (ev.clientX - r.left) / r.width * st.mW, y: (ev.clientY - r.top) / r.height * st.mH };
  }

  function brushRadius() {
    const r = $('overlay').getBoundingClientRect();
    return Math.max(0.5, Number($('brush-size').value) / 2 * st.mW / r.width);
  }

  function paintTo(p, from, to) {
    const ctx = p.canvas.getContext('2d');
    ctx.globalCompositeOperation = st.tool === 'erase' ? 'destination-out' : 'source-over';
    ctx.fillStyle = ctx.strokeStyle = '#fff';
    const r = brushRadius();
    ctx.lineWidth = 2 * r;
    ctx.lineCap = ctx.lineJoin = 'round';
    if (!from) {
      ctx.beginPath();
      ctx.arc(to.x, to.y, r, 0, 2 * Math.PI);
      ctx.fill();
    } else {
      ctx.beginPath();
      ctx.moveTo(from.x, from.y);
      ctx.lineTo(to.x, to.y);
      ctx.stroke();
    }
    if (st.tool !== 'erase') p.painted = true;
  }

  function activePaintPair() {
    const p = st.pairs[st.active];
    if (!p) return null;
    if (p.mode !== 'paint') {
      p.mode = 'paint';
      p.modeSel.value = 'paint';
    }
    return p;
  }

  function onPointerDown(ev) {
    if (!st.img || ev.button !== 0) return;
    const p = activePaintPair();
    if (!p) return;
    ev.preventDefault();
    $('overlay').setPointerCapture(ev.pointerId);
    const pt = maskPoint(ev);
    if (st.tool === 'box') {
      st.box = { x0: pt.x, y0: pt.y, x1: pt.x, y1: pt.y };
    } else {
      st.stroke = pt;
      paintTo(p, null, pt);
    }
    drawOverlay();
  }

  function onPointerMove(ev) {
    if (!st.stroke && !st.box) return;
    const pt = maskPoint(ev);
    if (st.box) {
      st.box.x1 = pt.x;
      st.box.y1 = pt.y;
    } else {
      paintTo(st.pairs[st.active], st.stroke, pt);
      st.stroke = pt;
    }
    drawOverlay();
  }

  function onPointerUp() {
    const p = st.pairs[st.active];
    if (st.box && p) {
      const b = st.box;
      const x = Math.min(b.x0, b.x1), y = Math.min(b.y0, b.y1), w = Math.abs(b.x1 - b.x0), h = Math.abs(b.y1 - b.y0);
      if (w >= 1 && h >= 1) {
        const ctx = p.canvas.getContext('2d');
        ctx.globalCompositeOperation = 'source-over';
        ctx.fillStyle = '#fff';
        ctx.fillRect(Math.round(x), Math.round(y), Math.max(1, Math.round(w)), Math.max(1, Math.round(h)));
        p.painted = true;
      }
    }
    st.box = null;
    st.stroke = null;
    drawOverlay();
    updateRun();
  }

  /* The pair's mask at the photo's size (what oir edit --mask takes): the
   * painted crop scaled back to its region, white where painted, black
   * elsewhere, as a PNG; null when nothing is painted. */
  async function maskBlob(p) {
    const c = document.createElement('canvas');
    c.width = st.photoW;
    c.height = st.photoH;
    const ctx = c.getContext('2d');
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(p.canvas, 0, 0, st.mW, st.mH, st.crop.x, st.crop.y, st.crop.w, st.crop.h);
    const data = ctx.getImageData(0, 0, c.width, c.height);
    const px = data.data;
    let any = false;
    for (let i = 0; i < px.length; i += 4) {
      const v = px[i + 3] >= 128 ? 255 : 0;
      any = any || v > 0;
      px[i] = px[i + 1] = px[i + 2] = v;
      px[i + 3] = 255;
    }
    if (!any) return null;
    ctx.putImageData(data, 0, 0);
    return new Promise((resolve) => c.toBlob(resolve, 'image/png'));
  }

  /* ---------------------------------------------------------- running */

  function updateRun() {
    const ready = !!st.img && $('prompt').value.trim() !== '' && st.pairs.length > 0 &&
      st.pairs.every((p) => p.fromIn.value.trim() && p.toIn.value.trim());
    $('run').disabled = !ready || st.busy;
  }

  function setBusy(b) {
    st.busy = b;
    $('cancel').disabled = !b;
    $('candidates').classList.toggle('busy', b);
    for (const c of document.querySelectorAll('.cand')) c.disabled = b;
    updateRun();
  }

  function numberField(id) {
    const v = $(id).value.trim();
    return v === '' ? undefined : Number(v);
  }

  async function run() {
    showError('');
    const params = { prompt: $('prompt').value.trim(), pairs: [] };
    const fd = new FormData();
    for (let i = 0; i < st.pairs.length; i++) {
      const p = st.pairs[i];
      const pair = { from: p.fromIn.value.trim(), to: p.toIn.value.trim(), mask: 'auto' };
      if (p.mode === 'paint') {
        const blob = await maskBlob(p);
        if (!blob) {
          showError(`pair ${i + 1} (${pair.from}): paint its mask or draw a box on the photo, or choose “auto mask”`);
          return;
        }
        pair.mask = 'upload';
        fd.append(`mask${i + 1}`, blob, `mask${i + 1}.png`);
      }
      params.pairs.push(pair);
    }
    const fields = { steps: 'steps', reassembly_step: 'reassembly', reinversion_steps: 'reinversion', guidance: 'guidance' };
    for (const [key, id] of Object.entries(fields)) {
      const v = numberField(id);
      if (v !== undefined) params[key] = v;
    }
    const search = $('search').value.trim();
    if (search) params.search = search;
    fd.append('params', JSON.stringify(params));
    fd.append('image', st.file, st.file.name);
    const url = await photoUrl();
    if (st.runPhotoUrl && st.runPhotoUrl !== url) URL.revokeObjectURL(st.runPhotoUrl);
    st.runPhotoUrl = url;
    setBusy(true);
    $('state').textContent = 'uploading…';
    let res;
    try {
      res = await fetch('/api/jobs', { method: 'POST', body: fd });
    } catch (e) {
      setBusy(false);
      showError(`cannot reach the server: ${e.message}`);
      return;
    }
    if (!res.ok) {
      setBusy(false);
      $('state').textContent = '';
      showError(await errorText(res));
      return;
    }
    const job = await res.json();
    st.job = job.id;
    st.status = null;
    watch();
  }

  function showProgress(s) {
    const box = $('progress');
    box.replaceChildren();
    for (let i = 0; i < s.stages.length; i++) {
      const g = s.stages[i];
      const bar = el('progress', { max: String(Math.max(1, g.total)), value: String(g.done) });
      const cur = g.name === s.stage && !FINISHED.includes(s.state);
      box.append(el('span', { class: cur ? 'current' : '', text: g.name }), bar, el('span', { text: `${g.done}/${g.total}` }));
    }
    let what = s.state;
    if (s.state === 'queued') what += s.queue_position ? ` (${s.queue_position} ahead)` : '';
    if (s.task === 'pick' && s.pick && !FINISHED.includes(s.state)) what = `pick pair ${s.pick.pair} step ${s.pick.step}: ${what}`;
    $('state').textContent = what;
  }

  function watch() {
    setBusy(true);
    if (st.es) st.es.close();
    const es = new EventSource(`/api/jobs/${st.job}/events`);
    st.es = es;
    es.onmessage = (ev) => {
      const s = JSON.parse(ev.data);
      showProgress(s);
      if (FINISHED.includes(s.state)) {
        es.close();
        if (st.es === es) st.es = null;
        loadResult();
      }
    };
    es.addEventListener('gone', () => {
      es.close();
      st.es = null;
      setBusy(false);
      showError('the job expired or was deleted on the server');
    });
  }

  async function cancel() {
    if (!st.job) return;
    const res = await fetch(`/api/jobs/${st.job}`, { method: 'DELETE' });
    if (!res.ok) showError(await errorText(res));
  }

  async function loadResult() {
    const res = await fetch(`/api/jobs/${st.job}`);
    if (!res.ok) {
      setBusy(false);
      showError(await errorText(res));
      return;
    }
    const s = await res.json();
    st.status = s;
    showProgress(s);
    setBusy(false);
    if (s.state === 'failed') showError(s.error || 'the job failed');
    else if (s.state === 'cancelled') showError(s.error && s.error !== 'cancelled' ? `cancelled: ${s.error}` : 'cancelled');
    else if (s.pick_error) showError(s.pick_error);
    if (s.result) renderResult(s);
  }

  /* ---------------------------------------------------------- the result */

  function fileUrl(name, rev) {
    return `/api/jobs/${st.job}/files/${name}${rev ? `?r=${rev}` : ''}`;
  }

  /* The photo as oir reads it (EXIF rotation undone), for the result's
   * before/after: edited.png is the whole photo with the edits put back, so
   * it is compared with the whole photo, not the working crop. */
  async function photoUrl() {
    if (!st.photoUrl && st.img) {
      const c = document.createElement('canvas');
      c.width = st.img.width;
      c.height = st.img.height;
      c.getContext('2d').drawImage(st.img, 0, 0);
      const blob = await new Promise((resolve) => c.toBlob(resolve, 'image/png'));
      st.photoUrl = URL.createObjectURL(blob);
    }
    return st.photoUrl;
  }

  function showResultImage() {
    const s = st.status;
    if (!s || !s.result) return;
    const rev = s.result.revision;
    $('img-result').src = st.showBefore ? st.runPhotoUrl : fileUrl('edited.png', rev);
    $('result-caption').textContent = st.showBefore ? 'before (the photo)' : `edited.png (revision ${rev})`;
    $('toggle').textContent = st.showBefore ? 'Show after' : 'Show before';
  }

  function renderResult(s) {
    const r = s.result;
    $('result-panel').hidden = false;
    $('img-input').src = st.runPhotoUrl;
    showResultImage();
    const picks = r.pairs.map((p) => `pair ${p.from} → ${p.to}: step ${p.chosen_step}` +
      (p.chosen_step !== p.searched_step ? ' (picked)' : '')).join('; ');
    $('result-note').textContent = `${r.working.width}x${r.working.height}, T = ${r.steps}, search ${r.search}, ` +
      `${r.seconds.toFixed(1)} s. ${picks}`;
    const dl = $('downloads');
    dl.replaceChildren();
    const files = ['edited.png', 'edited_working.png', 'report.json'];
    r.pairs.forEach((p, i) => files.push(`pair${i + 1}_sheet.png`, `pair${i + 1}_mask.png`));
    for (const f of files) dl.append(el('a', { href: fileUrl(f, r.revision), download: f, text: f }));
    $('warnings').textContent = r.warnings.length ? `Warnings: ${r.warnings.join(' · ')}` : '';
    const box = $('candidates');
    box.replaceChildren();
    r.pairs.forEach((p, i) => box.append(renderPair(r, p, i)));
  }

  function pad2(k) {
    return k < 10 ? `0${k}` : String(k);
  }

  function renderPair(r, p, i) {
    const T = r.steps;
    const wrap = el('div', { class: 'pair-result' });
    const searched = p.searched_step ? `, searched ${p.searched_step} ★` : '';
    wrap.append(el('h4', { text: `Pair ${i + 1}: ${p.from} → ${p.to} — step ${p.chosen_step}${searched}${p.mask_inferred ? ' (auto mask)' : ''}` }));
    wrap.append(chart(p, T));
    wrap.append(el('div', { class: 'legend' }, el('span', { class: 'l-edit', text: '— edit (masked CLIP)' }),
      el('span', { class: 'l-bg', text: '— background (−MSE)' }), el('span', { class: 'l-total', text: '— total' }),
      el('span', { class: 'l-chosen', text: '| chosen' })));
    const grid = el('div', { class: 'cands' });
    for (let k = 1; k <= T; k++) {
      const chosen = k === p.chosen_step;
      const b = el('button', {
        type: 'button',
        class: `cand${chosen ? ' chosen' : ''}${k === p.searched_step ? ' searched' : ''}`,
        title: `pair ${i + 1}, candidate k = ${k}` + (p.evaluated[k - 1] ? '' : ' (not evaluated by the search)'),
        'data-pair': String(i + 1), 'data-step': String(k),
      });
      if (p.images[k - 1]) b.append(el('img', { src: fileUrl(`pair${i + 1}_k${pad2(k)}.png`, r.revision), alt: `k ${k}` }));
      else b.append(el('span', { class: 'blank', text: '·' }));
      b.append(el('span', { text: `k ${k}` }));
      b.disabled = st.busy;
      b.addEventListener('click', () => pick(i + 1, k));
      grid.append(b);
    }
    wrap.append(grid);
    return wrap;
  }

  const SVGNS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  }

  /* The metric curves: edit and background normalised (0..1), their sum
   * (0..2), over k = 1..T; points only where the search scored. */
  function chart(p, T) {
    const W = 600, H = 150, L = 28, R = 8, TOP = 8, B = 20;
    const s = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' });
    const x = (k) => L + (T > 1 ? (k - 1) / (T - 1) : 0.5) * (W - L - R);
    const y = (v) => TOP + (1 - v / 2) * (H - TOP - B);
    s.append(svg('rect', { x: L, y: TOP, width: W - L - R, height: H - TOP - B, fill: '#fbfbfb', stroke: '#ddd' }));
    for (const v of [0, 1, 2]) {
      s.append(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: '#eee' }));
      const t = svg('text', { x: 4, y: y(v) + 3 });
      t.textContent = String(v);
      s.append(t);
    }
    const ticks = T <= 10 ? T : 10;
    for (let j = 0; j < ticks; j++) {
      const k = T <= 10 ? j + 1 : Math.round(1 + j * (T - 1) / (ticks - 1));
      const t = svg('text', { x: x(k) - 4, y: H - 5 });
      t.textContent = String(k);
      s.append(t);
    }
    const cx = x(p.chosen_step);
    s.append(svg('line', { x1: cx, x2: cx, y1: TOP, y2: H - B, stroke: '#c62828', 'stroke-width': 2 }));
    const series = [[p.edit, '#2e7d32'], [p.background, '#1565c0'], [p.total, '#000000']];
    for (const [vals, color] of series) {
      const pts = [];
      vals.forEach((v, k) => {
        if (v === null || p.evaluated[k] === 0 || p.evaluated[k] === 3) return;
        pts.push(`${x(k + 1).toFixed(1)},${y(v).toFixed(1)}`);
      });
      if (pts.length > 1) s.append(svg('polyline', { points: pts.join(' '), fill: 'none', stroke: color, 'stroke-width': 1.5 }));
      for (const pt of pts) {
        const [px, py] = pt.split(',');
        s.append(svg('circle', { cx: px, cy: py, r: 2.5, fill: color }));
      }
    }
    return s;
  }

  async function pick(pair, step) {
    if (st.busy || !st.job) return;
    showError('');
    setBusy(true);
    const res = await fetch(`/api/jobs/${st.job}/pick`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ pair, step }),
    });
    if (res.status === 202) watch();
    else if (res.ok) loadResult();
    else {
      setBusy(false);
      showError(await errorText(res));
    }
  }

  /* ---------------------------------------------------------- start */

  async function init() {
    const res = await fetch('/api/info');
    st.info = await res.json();
    $('model').textContent = `${st.info.model} · oir ${st.info.version}`;
    const d = st.info.defaults;
    $('steps').value = d.steps;
    $('reassembly').value = d.reassembly_step;
    $('reinversion').value = d.reinversion_steps;
    $('guidance').value = d.guidance;
    $('search').value = d.search;
    addPair();
    $('file').addEventListener('change', (ev) => openFile(ev.target.files[0]));
    const drop = $('drop');
    drop.addEventListener('dragover', (ev) => { ev.preventDefault(); drop.classList.add('over'); });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (ev) => {
      ev.preventDefault();
      drop.classList.remove('over');
      if (ev.dataTransfer.files.length) openFile(ev.dataTransfer.files[0]);
    });
    const ov = $('overlay');
    ov.addEventListener('pointerdown', onPointerDown);
    ov.addEventListener('pointermove', onPointerMove);
    ov.addEventListener('pointerup', onPointerUp);
    ov.addEventListener('pointercancel', onPointerUp);
    for (const b of document.querySelectorAll('.tool')) {
      b.addEventListener('click', () => {
        st.tool = b.dataset.tool;
        for (const o of document.querySelectorAll('.tool')) o.classList.toggle('active', o === b);
      });
    }
    $('clear-mask').addEventListener('click', () => {
      const p = st.pairs[st.active];
      if (p) newMask(p);
      drawOverlay();
    });
    $('add-pair').addEventListener('click', () => addPair());
    $('prompt').addEventListener('input', updateRun);
    $('run').addEventListener('click', run);
    $('cancel').addEventListener('click', cancel);
    $('toggle').addEventListener('click', () => {
      st.showBefore = !st.showBefore;
      showResultImage();
    });
  }

  document.addEventListener('DOMContentLoaded', () => {
    init().catch((e) => showError(`cannot start: ${e.message}`));
  });
})();
