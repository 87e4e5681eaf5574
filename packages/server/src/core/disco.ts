import { NS, xml, type XmlElement } from '@parley/xmpp';

/** A service discovery identity (XEP-0030 §3.1). */
export interface DiscoIdentity {
  category: string;
  type: string;
  name?: string;
}

/**
 * What an entity (the server, an account, a component) says of itself in
 * service discovery (XEP-0030): identities, features and extended information
 * forms (XEP-0128). Modules add to it when they load and remove when they unload.
 */
export class DiscoInfo {
  private identities: DiscoIdentity[] = [];
  private features = new Map<string, number>();
  private forms: XmlElement[] = [];
  private _version = 0;

  /**
   * Incremented by every change (a feature, identity or form added or removed), so that
   * what is derived from the whole answer — the XEP-0115 verification string — is
   * recomputed only when it changed.
   */
  get version(): number {
    return this._version;
  }

  /** Adds a feature (a namespace or `var`); returns a function that removes it. Reference-counted. */
  addFeature(feature: string): () => void {
    const n = this.features.get(feature) ?? 0;
    this.features.set(feature, n + 1);
    if (n === 0) this._version++;
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      const left = (this.features.get(feature) ?? 1) - 1;
      if (left <= 0) {
        this.features.delete(feature);
        this._version++;
      } else this.features.set(feature, left);
    };
  }

  /** Adds an identity; returns a function that removes it. */
  addIdentity(identity: DiscoIdentity): () => void {
    this.identities.push(identity);
    this._version++;
    return () => {
      const i = this.identities.indexOf(identity);
      if (i >= 0) {
        this.identities.splice(i, 1);
        this._version++;
      }
    };
  }

  /**
   * Adds an extended information form (XEP-0128, a `jabber:x:data` result form with a
   * hidden FORM_TYPE field); returns a function that removes it. Do not change the element
   * once added (replace it instead): {@link version} would not see the change.
   */
  addForm(form: XmlElement): () => void {
    this.forms.push(form);
    this._version++;
    return () => {
      const i = this.forms.indexOf(form);
      if (i >= 0) {
        this.forms.splice(i, 1);
        this._version++;
      }
    };
  }

  /** `true` when the feature is advertised. */
  hasFeature(feature: string): boolean {
    return this.features.has(feature);
  }

  /** The sorted feature list. */
  featureList(): string[] {
    return [...this.features.keys()].sort();
  }

  /** The `<query xmlns='…disco#info'/>` payload (XEP-0030 §3.1), with `node` when given. */
  toQuery(node?: string): XmlElement {
    return xml(
      'query',
      { xmlns: NS.DISCO_INFO, node },
      this.identities.map((i) => xml('identity', { category: i.category, type: i.type, name: i.name })),
      this.featureList().map((f) => xml('feature', { var: f })),
      this.forms.map((f) => f.clone()),
    );
  }
}

/** A service discovery item (XEP-0030 §4.1). */
export interface DiscoItem {
  jid: string;
  name?: string;
  node?: string;
}

/**
 * The items of an entity (XEP-0030 §4): for the server, its services (MUC, pubsub, upload …),
 * which modules add when they load and remove when they unload.
 */
export class DiscoItems {
  private items: DiscoItem[] = [];

  /** Adds an item; returns a function that removes it. */
  add(item: DiscoItem): () => void {
    this.items.push(item);
    return () => {
      const i = this.items.indexOf(item);
      if (i >= 0) this.items.splice(i, 1);
    };
  }

  /** The `<query xmlns='…disco#items'/>` payload (XEP-0030 §4.1). */
  toQuery(): XmlElement {
    return xml('query', { xmlns: NS.DISCO_ITEMS }, this.items.map((i) => xml('item', { jid: i.jid, name: i.name, node: i.node })));
  }
}
